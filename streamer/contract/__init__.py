"""The event contract: what streamer reads from and writes to Kafka.

Topics (names configurable, see :class:`streamer.settings.Settings`):

- ``meter-readings`` (in, key = meter id): :mod:`streamer.contract.reading`
- ``meter-forecasts`` (out, key = meter id): :mod:`streamer.contract.forecast_record`
- ``meter-readings-dlq`` (out): :mod:`streamer.contract.dead_letter`
- ``meter-status`` (out, key = meter id): :mod:`streamer.contract.status_record`
- ``forecast-drift`` (out): declared now, filled by the drift monitor.

JSON Schemas of each message live in ``streamer/contract/schemas/``.
"""
