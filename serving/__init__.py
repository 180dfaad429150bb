"""Serving, in three parts: server/ (a TF Serving-compatible model server), clients/ (what a consumer
imports: REST and gRPC clients, the picture loader, the command line) and tools/ (the operator's
request-logging proxy, version labels, a server as a child process); beside them deploy/ (the real
TF Serving's configuration) and web/ (the draw-a-digit page)."""
