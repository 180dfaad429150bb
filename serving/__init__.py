"""Serving: a TF Serving-compatible development server, clients, deployment assets, a web page."""
