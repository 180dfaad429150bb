"""`python -m serving.server`: the TF Serving-compatible server (serving/server/main.py)."""

import sys

from serving.server.main import main

sys.exit(main())
