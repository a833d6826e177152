"""INT8 encoder benchmark (not a test): the embeddings linear model with its sentence encoder in FP32
(sentence-transformers, as trained) and in the INT8 runtime (models/int8_encoder.py), measured side by
side in one run, in-process on the same texts, as bench/int8_steps.py measures the transformer:

  fp32                  the SentenceTransformer encoder, then the classifier
  int8                  the encoder's ONNX export quantised to INT8 (2 intra-op threads), then the classifier
  int8, 1 thread        the same with 1 thread (one worker per pod on a 1-CPU limit)

For each: texts/s at batch 1 and 64 (medians of interleaved rounds) and macro recall on
the test split the gate scored the model on (see bench/int8_steps.py), its loss against FP32 and whether
the gate's bound (0.5 points) accepts it.
A model logged before the encoder had an INT8 runtime gets one exported here, as training now does.

    python bench/int8_encoder.py --model runs:/<run id of a linear-embeddings run>/model \
        [--tracking-uri sqlite:///.mlops/mlflow.db] [--data ../shared/data/tweeteval_sentiment] \
        [--split test] [--texts N] [--output bench/results/int8-encoder.json]
"""

import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from int8_steps import arguments, labelled_texts, measure_all, write_report  # noqa: E402

from models.int8_encoder import ENCODER_INT8_FILE, Int8Encoder, export_encoder_int8  # noqa: E402
from models.linear import embed_texts, load_encoder  # noqa: E402


def main() -> None:
    args = arguments(__doc__, "int8-encoder.json", model=None)

    import mlflow
    import torch

    texts, truth, downloaded = labelled_texts(args)
    classifier = mlflow.pyfunc.load_model(str(downloaded)).unwrap_python_model().classifier
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "encoder"
        shutil.copytree(next(downloaded.rglob("modules.json")).parent, folder)
        fp32 = load_encoder(str(folder))
        if not (folder / ENCODER_INT8_FILE).exists():
            assert export_encoder_int8(load_encoder(str(folder)), folder), "this encoder has no INT8 runtime"

        def runner(encoder):
            return lambda batch, size: classifier.predict_proba(embed_texts(encoder, batch, size))

        steps = {
            "fp32": runner(fp32),
            "int8": runner(Int8Encoder(folder, 2)),
            "int8, 1 thread": runner(Int8Encoder(folder, 1)),
        }
        results = measure_all(steps, texts, truth, list(classifier.classes_))
    write_report(args.model, args.split, len(texts), results, args.output)


if __name__ == "__main__":
    main()
