"""DataGate: stops the run when ExampleValidator found anomalies or the data drifted from the last good span."""
