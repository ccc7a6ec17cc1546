"""streamer: streaming forecaster for smart-meter data on Kafka."""

__version__ = "0.1.0"
