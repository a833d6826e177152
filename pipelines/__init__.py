"""The KFP pipeline, its parameters, its compiler and its two runners (kfp.local and kfp.Client)."""
