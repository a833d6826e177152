"""Plain, testable functions behind each pipeline step (one module per step)."""
