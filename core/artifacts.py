"""Names of the MLflow artifacts that one package writes and another reads: training logs them next to
the model, the serving bundle carries them, the monitor reads them."""

# the drift reference (monitoring/drift.py DriftReference, JSON), logged by evaluate
REFERENCE_ARTIFACT = "monitoring/drift_reference.json"
# the training texts' sentence embeddings (monitoring/embedding_drift.py), logged by the embedding reference
EMBEDDING_REFERENCE_ARTIFACT = "monitoring/embedding_reference.npz"
