"""Reads finished pipeline runs back from ML Metadata: the summary, the HTML report, the lineage of a version."""
