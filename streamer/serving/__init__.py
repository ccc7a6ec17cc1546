"""Model as a service over HTTP: ``POST /v1/forecast`` batched like the stream, API keys, OpenAPI.

Follow a request by file name: :mod:`.request` parses and checks the body into windows,
:mod:`.batcher` queues the windows of concurrent requests into one model run,
:mod:`.series_forecast` runs the model (and its fallback) on a batch of windows,
:mod:`.response` encodes the records, :mod:`.service` ties them together, :mod:`.auth` holds
the API keys and :mod:`.openapi` describes the routes.
"""
