"""The pipeline's steps, one module each: a plain, typed function and the KFP component over it.

Every component runs in the training image (``TRAIN_IMAGE``), which carries this repository's packages
and kfp, so nothing is pip-installed at run time; kfp.local's SubprocessRunner runs the same code here.
Each component's body imports what it calls, as KFP's lightweight components require.
"""

import os

from kfp import dsl

TRAIN_IMAGE = os.environ.get("TRAIN_IMAGE", "sentiment-mlops-train:dev")
if os.environ.get("_KFP_RUNTIME") == "true":
    # Inside a running step (KFP's executor sets _KFP_RUNTIME) kfp.dsl has no decorators; the body that
    # runs imports its module only for the plain function, so the decorator is a no-op there.
    def component(func):
        return func

else:
    component = dsl.component(base_image=TRAIN_IMAGE, install_kfp_package=False)


def keep_metrics(metrics) -> None:
    """Write an ``Output[Metrics]``'s values to its file as JSON: KFP keeps them in the artifact's
    metadata only, and kfp.local's cache takes an output without a file for a missing one (a cached step
    would never be reused)."""
    import json
    from pathlib import Path

    Path(metrics.path).parent.mkdir(parents=True, exist_ok=True)
    Path(metrics.path).write_text(json.dumps(metrics.metadata, sort_keys=True))
