"""The TF Serving-compatible model server: `python -m serving.server`, TF Serving's flags, REST and gRPC
APIs, model repository, batching, metrics and request logs. Not needed where the real
tensorflow_model_server serves."""
