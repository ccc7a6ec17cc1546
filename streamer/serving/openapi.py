"""The OpenAPI 3.1 document of a worker's HTTP routes (``GET /openapi.json``)."""

from __future__ import annotations

from typing import Any

from streamer.serving.errors import REJECTION_REASONS
from streamer.settings import Settings

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string", "description": "What was wrong, naming the limit."},
        "reason": {"type": "string", "enum": list(REJECTION_REASONS)},
    },
}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _series_schema(settings: Settings) -> dict[str, Any]:
    time = {
        "oneOf": [
            {"type": "string", "format": "date-time"},
            {"type": "integer", "description": "epoch milliseconds"},
        ]
    }
    return {
        "type": "object",
        "required": ["values_kwh"],
        "properties": {
            "id": {
                "type": "string",
                "minLength": 1,
                "maxLength": 256,
                "description": "Echoed as the record's meter_id (default: the series' index).",
            },
            "values_kwh": {
                "type": "array",
                "minItems": 1,
                "items": {"type": ["number", "null"]},
                "description": "Energy per slot, oldest first; null where missing (imputed as "
                f"the stream imputes). The newest {settings.lookback_slots} slots are used; at "
                f"least {settings.min_observed_fraction:g} of them must hold a value.",
            },
            "start_ts": time | {"description": "Start of the first value's slot."},
            "slot_end_ts": {
                "type": "array",
                "items": time,
                "description": "End of each value's slot, strictly increasing (instead of "
                "start_ts; gaps allowed).",
            },
            "resolution_seconds": {
                "type": "integer",
                "enum": [settings.resolution_seconds],
                "description": "Slot length; must be the worker's.",
            },
            "time_zone": {
                "type": "string",
                "description": "IANA zone of the series' calendar; the worker's "
                "STREAMER_TIME_ZONE when absent.",
            },
        },
    }


def openapi_document(settings: Settings, *, keys_required: bool) -> dict[str, Any]:
    """The document; ``keys_required`` marks the data routes as needing an API key."""
    secured: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}] if keys_required else []
    metrics_secured = secured if settings.metrics_require_key else []
    series = _series_schema(settings)
    forecast_request = {
        "oneOf": [
            {
                "type": "object",
                "required": ["series"],
                "properties": {
                    "model": {
                        "type": "string",
                        "description": "Model spec such as lstm:2 (default: the live model).",
                    },
                    "calibration": {
                        "type": "string",
                        "enum": ["fleet", "none"],
                        "description": "fleet (default): the p10..p90 band calibrated as the "
                        "stream calibrates a meter it never saw; none: the model's own.",
                    },
                    "series": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": settings.serving_max_series_per_request,
                        "items": series,
                    },
                },
            },
            series | {"properties": series["properties"] | {"model": {"type": "string"}}},
        ]
    }
    record = {
        "type": "object",
        "description": "A meter-forecasts record (see docs/contract.md) with fallback_reason.",
        "required": [
            "forecast_id",
            "meter_id",
            "issued_at",
            "origin_ts",
            "model_name",
            "model_version",
            "fallback",
            "resolution_seconds",
            "observed_fraction",
            "horizon_ts",
            "point_kwh",
            "quantiles_kwh",
            "fallback_reason",
        ],
        "properties": {
            "forecast_id": {"type": "string"},
            "meter_id": {"type": "string"},
            "issued_at": {"type": "string", "format": "date-time"},
            "origin_ts": {"type": "string", "format": "date-time"},
            "model_name": {"type": "string"},
            "model_version": {"type": "string"},
            "fallback": {"type": "boolean"},
            "fallback_reason": {"type": ["string", "null"]},
            "resolution_seconds": {"type": "integer"},
            "observed_fraction": {"type": "number"},
            "horizon_ts": {"type": "array", "items": {"type": "string", "format": "date-time"}},
            "point_kwh": {"type": "array", "items": {"type": "number"}},
            "quantiles_kwh": {
                "type": "object",
                "additionalProperties": {"type": "array", "items": {"type": "number"}},
            },
        },
    }
    unauthorized = _error("Missing or unknown API key.")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "streamer worker",
            "version": "1",
            "description": "Every worker answers every route; meter lookups are routed to the "
            "worker that owns the meter.",
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
            "schemas": {
                "Error": _ERROR,
                "ForecastRecord": record,
                "ForecastRequest": forecast_request,
            },
        },
        "paths": {
            "/v1/forecast": {
                "post": {
                    "summary": "Forecast series sent in the request (batched with others).",
                    "security": secured,
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/ForecastRequest"}
                            }
                        },
                    },
                    "responses": {
                        "200": _json(
                            "One record per series, in request order.",
                            {
                                "type": "object",
                                "properties": {
                                    "forecasts": {
                                        "type": "array",
                                        "items": {"$ref": "#/components/schemas/ForecastRecord"},
                                    }
                                },
                            },
                        ),
                        "400": _error("The body is not JSON."),
                        "401": unauthorized,
                        "413": _error(
                            f"Body over {settings.serving_max_body_bytes} bytes, or more than "
                            f"{settings.serving_max_series_per_request} series."
                        ),
                        "422": _error("Not a forecast request: the error names the field."),
                        "429": _error("Too many series queued for the model; retry."),
                    },
                }
            },
            "/meters/{meter_id}/forecast": {
                "get": {
                    "summary": "The newest forecast of a meter on the stream.",
                    "security": secured,
                    "parameters": [
                        {
                            "name": "meter_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {
                        "200": _json(
                            "The meter-forecasts record.",
                            {"$ref": "#/components/schemas/ForecastRecord"},
                        ),
                        "401": unauthorized,
                        "404": _error("No forecast for this meter yet."),
                    },
                }
            },
            "/groups/{group_id}/forecast": {
                "get": {
                    "summary": "The newest forecast of a group (feeder, substation, portfolio).",
                    "security": secured,
                    "parameters": [
                        {
                            "name": "group_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {
                        "200": _json(
                            "The group-forecasts record (schema group-forecasts.schema.json).",
                            {"type": "object"},
                        ),
                        "401": unauthorized,
                        "404": _error("No forecast for this group yet."),
                    },
                }
            },
            "/models": {
                "get": {
                    "summary": "The forecaster and fallback in use, ONNX providers.",
                    "security": secured,
                    "responses": {"200": _json("Models.", {"type": "object"}), "401": unauthorized},
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus exposition of this worker.",
                    "security": metrics_secured,
                    "responses": {"200": {"description": "text/plain exposition"}},
                }
            },
            "/health": {
                "get": {
                    "summary": "The process is up.",
                    "security": [],
                    "responses": {"200": {"description": "ok"}},
                }
            },
            "/ready": {
                "get": {
                    "summary": "Partitions assigned, tables recovered, Kafka reachable.",
                    "security": [],
                    "responses": {
                        "200": {"description": "ready"},
                        "503": {"description": "not ready"},
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document.",
                    "security": [],
                    "responses": {"200": {"description": "OpenAPI 3.1"}},
                }
            },
        },
    }
