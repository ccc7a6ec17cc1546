"""Prometheus metrics: one object per process, registry passed in, no per-meter labels."""
