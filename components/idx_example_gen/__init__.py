"""A file-based ExampleGen that reads MNIST's IDX files directly (no pre-converted TFRecords)."""
