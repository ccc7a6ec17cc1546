"""From a micro-batch of raw messages to state writes, forecasts and dead letters.

Pure code: the faust agent in :mod:`streamer.agents` only moves bytes in and out of Kafka.
"""
