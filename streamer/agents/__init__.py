"""Thin async glue between Kafka (faust) and the pure pipeline."""
