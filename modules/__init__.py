"""User code that TFX's Transform and Trainer import by dotted path (no tfx imports but the adapters)."""
