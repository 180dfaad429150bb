"""What watches the served model: its request logs, labels that come back, skew, drift and online accuracy."""
