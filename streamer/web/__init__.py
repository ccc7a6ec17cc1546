"""The worker's HTTP API (read-only): health, readiness, metrics."""
