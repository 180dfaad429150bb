"""What a consumer imports to call a TF Serving endpoint (the real one or serving.server): the REST
client (no TensorFlow), the gRPC client, the picture loader and the command line
`python -m serving.clients.cli`."""
