"""Which components exist and how they connect (pipeline.py), settings (configs.py), local orchestration."""
