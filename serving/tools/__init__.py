"""The operator's tools for deployments on either server: the request-logging proxy in front of the
real tensorflow_model_server (`python -m serving.tools.log_proxy`), version labels
(`python -m serving.tools.labels`) and starting a server as a child process (for tests, benchmarks and
scripts)."""
