"""A fingerprint of the user code that Transform and Trainer import by dotted path.

TFX keys its cache on inputs and execution properties. With a module_file it fingerprints the
file; with dotted entry points it cannot see the code, so an edited model would be served from
cache. The runners pass this fingerprint into Transform's and Trainer's custom_config instead.
"""

import hashlib
import os

import modules

MODULES_DIR = os.path.dirname(os.path.abspath(modules.__file__))


def fingerprint(directory: str = MODULES_DIR) -> str:
    """sha256 over the names and bytes of the .py files below directory (first 16 hex digits)."""
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        for name in sorted(f for f in files if f.endswith(".py")):
            path = os.path.join(root, name)
            digest.update(os.path.relpath(path, directory).encode())
            with open(path, "rb") as f:
                digest.update(f.read())
    return digest.hexdigest()[:16]
