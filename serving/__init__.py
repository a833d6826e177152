"""The KServe predictor: a kserve.Model serving the MLflow champion over v1 and v2 (REST and gRPC)."""
