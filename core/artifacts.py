"""Names of the MLflow artifacts and tags that one package writes and another reads: training logs them
next to the model, the serving bundle carries them, the monitor and the model card read them."""

# the drift reference (monitoring/drift.py DriftReference, JSON), logged by evaluate
REFERENCE_ARTIFACT = "monitoring/drift_reference.json"
# the training texts' sentence embeddings (monitoring/embedding_drift.py), logged by the embedding reference
EMBEDDING_REFERENCE_ARTIFACT = "monitoring/embedding_reference.npz"
# ingest's label checks of each source (components/label_checks.py), tagged on each candidate's run as
# <prefix><source> (one line each) and the flagged sources under MACHINE_LABELLED_TAG; the card shows them
LABEL_CHECKS_TAG_PREFIX = "label_checks."
MACHINE_LABELLED_TAG = "data.machine_labelled"
# the monitor's estimate of the traffic's mix of training sources (JSON {source: share}), a tag of its runs
# in experiment sentiment-monitoring; the gate's target "traffic" weights the sources' test slices by it
TRAFFIC_MIX_TAG = "traffic_mix"
