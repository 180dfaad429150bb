"""Kubeflow Pipelines (KFP v2): compile the same create_pipeline(...), schedule recurring runs."""
