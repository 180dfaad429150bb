"""Time limits of the tests, in seconds: pytest.ini gives every test 300 s; these are the longer ones.

A limit is a bound on a hang, not a speed target: each is several times what the step takes here."""

# A test module that runs the pipeline: its module fixtures (one to three pipeline runs) count toward
# the first test that uses them.
E2E_TIMEOUT = 1800
# One `local_runner.py --quick` (or slice) run as a subprocess.
PIPELINE_TIMEOUT = 900
# Any other command a test runs (a lineage query, the monitor, promtool, a script).
COMMAND_TIMEOUT = 300
