"""The DAG (dag.py, blessing.py), its settings (configs.py) and the local runner (local_runner.py, console.py)."""
