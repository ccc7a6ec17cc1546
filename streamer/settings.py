"""The one configuration object: read from ``STREAMER_*`` environment variables, built once.

Every other module receives a :class:`Settings` (or the values it needs) as an argument; nothing
else reads the environment. A bad value stops the process at start with a sentence that names
the variable (see :func:`load_settings`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streamer.errors import StreamerError
from streamer.forecast.local_time import is_known_zone

ENV_PREFIX = "STREAMER_"


class SettingsError(StreamerError):
    """A ``STREAMER_*`` variable has a value streamer cannot use."""


#: Groups exported to Prometheus one by one, at most (each adds a few series).
MAX_WATCHED_GROUPS = 20


class Settings(BaseSettings):
    """All of streamer's settings. Field ``x`` is read from ``STREAMER_X``."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="ignore")

    # --- where things live -------------------------------------------------------------------
    state_dir: Path = Field(
        Path(".streamer"),
        description="Project state: Kafka jars and log, worker data, pid files.",
    )

    kafka_libs_dir: Path | None = Field(
        None, description="Where the Kafka jars go (default: <state_dir>/kafka-libs)."
    )

    # --- Kafka ---------------------------------------------------------------------------------
    kafka_bootstrap: str = Field(
        "127.0.0.1:9092", description="host:port list of the Kafka brokers."
    )
    kafka_controller_port: int = Field(
        9093, description="Controller port of the local KRaft broker (`streamer kafka`)."
    )
    kafka_heap_mb: int = Field(512, ge=128, description="Heap of the local Kafka JVM.")
    app_id: str = Field("streamer", description="Consumer group and faust application id.")
    topic_partitions: int = Field(4, ge=1, description="Partitions of topics streamer creates.")
    readings_topic: str = Field(
        "meter-readings", description="Topic of the meter readings (input)."
    )
    forecasts_topic: str = Field(
        "meter-forecasts", description="Topic of the forecasts, one record per meter and slot."
    )
    dlq_topic: str = Field(
        "meter-readings-dlq", description="Dead-letter topic: refused readings with the reason."
    )
    status_topic: str = Field(
        "meter-status", description="Topic of meter status events (silent, flatline...)."
    )
    drift_topic: str = Field("forecast-drift", description="Topic of accuracy and drift reports.")
    control_topic: str = Field(
        "streamer-control", description="Compacted topic of model rollouts (live/shadow)."
    )
    groups_topic: str = Field(
        "meter-groups",
        description="Compacted topic of group membership: key meter id, value its groups "
        "(feeders, substations, portfolios); `streamer groups load` writes it.",
    )
    group_contributions_topic: str = Field(
        "group-contributions",
        description="Repartition topic: members' forecasts and readings keyed by group.",
    )
    group_forecasts_topic: str = Field(
        "group-forecasts", description="Topic of group forecasts, one record per group and slot."
    )
    group_lateness_seconds: int = Field(
        600,
        ge=1,
        description="How long a group forecast (or a slot's realised total) waits for members "
        "that have not reported; then it is issued with them filled or missing, and counted.",
    )
    watched_groups: str = Field(
        "",
        description="Comma-separated group ids (at most 20) whose realised load and one-slot-"
        "ahead forecast are exported to Prometheus per group, for the Grafana group panel; "
        "every other group is in the aggregates by kind only.",
    )
    kafka_fetch_max_wait_ms: int = Field(
        50,
        ge=1,
        le=30_000,
        description="Longest the broker holds a fetch with no new records. Short: a fetch sent "
        "while the readings wait unconsumed asks only for quiet partitions and blocks the next "
        "readings' fetch this long (faust's own 1,500 ms gave seconds of latency at 1,000/s).",
    )
    consumer_session_timeout_seconds: float = Field(
        30.0, ge=6.0, description="A worker silent this long loses its partitions to the others."
    )
    group_instance_id: str | None = Field(
        None,
        min_length=1,
        description="Kafka static group membership (KIP-345): a stable id per worker (e.g. the "
        "host name); a restarted worker takes its partitions back at once instead of after the "
        "session timeout. A stopped worker's partitions then wait for the session timeout, "
        "since static members do not leave the group; a worker restarted with the same id must "
        "keep its STREAMER_WEB_HOST and STREAMER_WEB_PORT (faust's assignor checks them).",
    )
    table_standby_replicas: int = Field(
        1,
        ge=0,
        description="Standby copies of each table partition, kept up to date by other workers "
        "(faust's standbys): a worker that takes over a dead worker's partitions has their state "
        "at hand. A copy costs the worker holding it the memory of the meters it mirrors (with "
        "two workers and 1, each worker holds every meter); 0 saves that memory, and a takeover "
        "restores the partitions from their changelogs instead.",
    )
    changelog_segment_ms: int = Field(
        600_000,
        ge=60_000,
        description="Segment age after which a changelog topic's active segment rolls, so the "
        "log cleaner can compact it (only closed segments are compacted).",
    )
    changelog_segment_bytes: int = Field(
        16 * 1024 * 1024,
        ge=1024 * 1024,
        description="Segment size after which a changelog topic's active segment rolls.",
    )
    processing_guarantee: Literal["at_least_once", "exactly_once"] = Field(
        "at_least_once",
        description="at_least_once: a crash replays, never loses; a re-issued forecast repeats "
        "its forecast_id. exactly_once: each batch's outputs, state and offsets commit in one "
        "Kafka transaction per readings partition (read outputs with read_committed).",
    )
    coalesce_state_writes: bool = Field(
        True,
        description="at_least_once: through a backlog, write a meter's record to its changelog "
        "once per offset commit (every 4 batches, and whenever the worker has caught up) with "
        "its newest state, rather than once per batch that changed it, as Kafka Streams' record "
        "caches do; a batch's offsets are acknowledged only once its state is written, so a "
        "crash replays up to 4 batches (their forecasts again, same forecast_id) rather than "
        "one. false writes every batch's state. exactly_once writes every batch's state in its "
        "transaction.",
    )
    batch_in_thread: bool = Field(
        False,
        description="Run the batch processor on a thread of its own, so that ONNX Runtime and "
        "numpy (which release the GIL) overlap the event loop's sends and fetches. Off by "
        "default: on 2 cores it gave the same forecasts/s for 15% more CPU per forecast and a "
        "worse p99 (threads trading the GIL); try it where a worker has cores to spare.",
    )
    producer_batch_bytes: int = Field(
        524_288,
        ge=16_384,
        le=1_000_000,
        description="Largest record batch the worker sends to one partition (kept under the "
        "broker's message.max.bytes, 1 MB by default); an output record must fit in one.",
    )
    kafka_compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = Field(
        "zstd",
        description="Codec of the record batches the worker writes (outputs and changelogs). "
        "zstd: forecast JSON about 5x and state records about 1.9x smaller in Kafka.",
    )
    kafka_zstd_level: int = Field(
        1,
        ge=-7,
        le=22,
        description="zstd level of the record batches the worker writes (with "
        "STREAMER_KAFKA_COMPRESSION=zstd). Level 1 left a batch of forecast JSON as small as "
        "Kafka's default level 3 did (559 against 578 B a forecast; state records 921 against "
        "893 B) at about 1.6x the speed; negative levels are faster still and larger.",
    )

    # --- Kafka security: TLS and SASL, applied to every Kafka client (streamer/kafka_security.py)
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT",
        description="How every Kafka client connects: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.",
    )
    kafka_sasl_mechanism: Literal["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"] = Field(
        "SCRAM-SHA-512",
        description="SASL mechanism (PLAIN only over SASL_SSL: it sends the password as is).",
    )
    kafka_sasl_username: str | None = Field(None, description="SASL user (SASL_* protocols).")
    kafka_sasl_password: SecretStr | None = Field(
        None, description="SASL password; shown masked, never logged."
    )
    kafka_ssl_cafile: Path | None = Field(
        None, description="PEM file of the CA(s) that signed the brokers' certificates."
    )
    kafka_ssl_certfile: Path | None = Field(
        None, description="PEM client certificate, for brokers that require mutual TLS."
    )
    kafka_ssl_keyfile: Path | None = Field(
        None, description="PEM private key of STREAMER_KAFKA_SSL_CERTFILE."
    )
    kafka_ssl_check_hostname: bool = Field(
        True, description="Check that a broker's certificate names the host connected to."
    )

    # --- the slot grid and per-meter window ----------------------------------------------------
    resolution_seconds: int = Field(1800, description="Slot length; must divide one day.")
    lookback_slots: int = Field(336, ge=2, description="Slots of history kept per meter.")
    horizon_slots: int = Field(48, ge=1, description="Slots forecast ahead.")
    time_zone: str = Field(
        "UTC",
        description="IANA zone of the fleet's calendar (e.g. Europe/London): local calendar "
        "features, seasonal-naive lags and days; a reading's own time_zone field overrides it.",
    )
    allowed_lateness_slots: int = Field(
        48, ge=1, description="How far behind a meter's newest slot a reading may still land."
    )
    interpolate_max_gap_slots: int = Field(
        4, ge=0, description="Longest gap filled by linear interpolation (longer: day/week)."
    )
    min_observed_fraction: float = Field(
        0.15, ge=0.0, le=1.0, description="Share of observed slots needed to forecast a meter."
    )
    forecast_every_slots: int = Field(1, ge=1, description="Forecast cadence per meter.")
    retention_seconds: int = Field(
        7 * 86400, ge=60, description="Meters silent this long are dropped from state."
    )

    # --- data quality --------------------------------------------------------------------------
    max_power_kw: float = Field(
        1000.0,
        gt=0,
        description="Physical bound: energy per slot above this mean power is rejected.",
    )
    future_tolerance_seconds: int = Field(
        300, ge=0, description="How far ahead of the clock a reading may be (clock skew)."
    )
    max_message_bytes: int = Field(
        16384,
        ge=256,
        le=524_288,
        description="Larger readings are dead-lettered as oversized with a 4 KiB prefix kept.",
    )
    flatline_slots: int = Field(
        12, ge=2, description="Identical observed values in a row that count as a flatline."
    )
    silent_slots: int = Field(
        6, ge=1, description="Slots without a reading after which a meter is reported silent."
    )
    silence_check_interval_seconds: float = Field(
        30.0, gt=0, description="How often the silence and expiry scan runs."
    )

    # --- batching and forecasting --------------------------------------------------------------
    batch_max_events: int = Field(
        2000,
        ge=1,
        description="Most readings in a micro-batch: a batch takes what has arrived, up to this "
        "(fewer once the oldest has waited STREAMER_BATCH_LINGER_MS).",
    )
    batch_linger_ms: int = Field(
        20,
        ge=0,
        le=1000,
        description="A batch of fewer than STREAMER_BATCH_MAX_EVENTS readings is taken once its "
        "oldest reading has waited this long: a worker far from busy makes fewer, larger "
        "batches (each costs a few ms of CPU in the worker and the broker: the sends, the "
        "models' calls, an offset commit); a backlog is taken at once. At 1,000 readings/s, "
        "20 ms took the worker from about 0.83 to 0.53 cores and the broker from 0.44 to 0.30, "
        "for 6-12 ms more latency. 0: take what has arrived at once.",
    )
    stream_buffer_events: int = Field(
        4096,
        ge=1,
        description="Most readings a worker holds fetched but not processed (at least two "
        "batches); when full it stops fetching and the backlog waits in Kafka, so memory is "
        "bounded by about this many messages.",
    )
    state_cache_meters: int = Field(
        4096,
        ge=0,
        description="Meters whose decoded record (window, ledger, detector: about 4.7 KB) a "
        "worker keeps between batches, the most recently seen first; the rest are kept only as "
        "their encoded bytes (about 1.8 KB) and decoded when a reading comes (about 30 us). "
        "The default holds the last two batches' meters, so a backlog decodes a meter once; a "
        "live fleet, whose meters report once a slot, would gain nothing from a larger cache "
        "but memory. 0 turns the cache off. The changelog-backed table stays the source of "
        "truth.",
    )
    forecaster: str = Field(
        "lstm", description="Forecaster spec: lstm (newest version), lstm:1, seasonal_naive, ets..."
    )
    fallback_forecaster: str = Field(
        "seasonal_naive_day",
        description="Baseline for meters the forecaster cannot serve (too little history).",
    )

    models_dir: Path = Field(
        Path("models"), description="Model repository: <models_dir>/<name>/<version>/model.onnx."
    )
    onnx_providers: str = Field(
        "",
        description="ONNX Runtime providers, comma-separated (empty: CUDA when present, then CPU).",
    )
    onnx_intra_op_threads: int = Field(
        1,
        ge=0,
        description="ONNX Runtime threads per inference (0: one per core). streamer scales by "
        "workers, one per core; a second thread per worker spun on the core the rest of the "
        "worker and the broker need (at 1,000 readings/s: 1.33 cores per worker, not 0.71).",
    )
    inference_threads: int = Field(
        2,
        ge=1,
        le=64,
        description="Threads that run the models of a batch's chunks (of 256 meters; 4 chunks "
        "in a smaller batch), each with STREAMER_ONNX_INTRA_OP_THREADS, while the event loop "
        "applies the next chunks; "
        "2 took the bench's forecasting phase from about 5,500 to about 6,100 forecasts/s on 2 "
        "cores shared with the broker. Outputs do not depend on it.",
    )
    inference_thread_nice: int = Field(
        10,
        ge=0,
        le=19,
        description="Added to the nice value of the inference threads (Linux; 0: as the "
        "process), so that the event loop, the batch's critical path, gets a core whenever it "
        "can run; on 2 cores shared with the broker, 10 took the bench's forecasting phase "
        "from a mean 6,228 to 6,929 forecasts/s (4 interleaved pairs, each faster). With "
        "cores to spare it changes nothing. Outputs do not depend on it.",
    )
    debug_inference_delay_ms: float = Field(
        0.0,
        ge=0,
        description="For tests only: sleep this long in every forecaster call (backpressure).",
    )

    # --- accuracy and drift -------------------------------------------------------------------
    drift_ph_delta: float = Field(
        0.5, ge=0, description="Page-Hinkley tolerance on standardised residuals (per meter)."
    )
    drift_ph_threshold: float = Field(
        25.0, gt=0, description="Page-Hinkley alarm threshold (higher: fewer false alarms)."
    )
    drift_ph_min_instances: int = Field(
        48, ge=1, description="Matched residuals a meter needs before Page-Hinkley may alarm."
    )
    drift_report_interval_seconds: float = Field(
        60.0, gt=0, description="How often fleet accuracy and data drift are reported."
    )
    calibration_step: float = Field(
        0.05,
        ge=0.0,
        le=1.0,
        description="Online calibration of the published p10..p90 band (per meter and horizon, "
        "on a fleet prior, from the matched actuals): how far one match moves the log of a "
        "half-band's multiplier. 0 publishes the model's own quantiles.",
    )
    drift_psi_threshold: float = Field(
        0.2, gt=0, description="Population stability index above which inputs have drifted."
    )
    drift_ks_threshold: float = Field(
        0.1, gt=0, description="Kolmogorov-Smirnov distance above which inputs have drifted."
    )

    # --- web -----------------------------------------------------------------------------------
    web_host: str = Field("127.0.0.1", description="HTTP bind address (loopback by default).")
    web_port: int = Field(6066, ge=0, le=65535, description="HTTP port of the worker.")
    web_tls_certfile: Path | None = Field(
        None,
        description="PEM certificate (chain) of the HTTP server: set it with "
        "STREAMER_WEB_TLS_KEYFILE and the worker serves HTTPS only.",
    )
    web_tls_keyfile: Path | None = Field(
        None, description="PEM private key of STREAMER_WEB_TLS_CERTFILE."
    )
    api_keys: SecretStr | None = Field(
        None,
        description="API keys for the data routes, comma-separated, each 'name:key' (the name "
        "labels the key's request counter; a bare key is named key-1, key-2...). Required "
        "whenever STREAMER_WEB_HOST is not a loopback address; never logged.",
    )
    api_keys_file: Path | None = Field(
        None,
        description="A file of API keys, one 'name:key' per line ('#' comments), e.g. a mounted "
        "secret; read at start, added to STREAMER_API_KEYS.",
    )
    metrics_require_key: bool = Field(
        False,
        description="Ask an API key for GET /metrics too (Prometheus then sends it as a bearer "
        "token); /health, /ready and /openapi.json stay open.",
    )
    serving_max_batch_series: int = Field(
        256,
        ge=1,
        le=100_000,
        description="POST /v1/forecast: most series in one model run; requests that arrive "
        "together are batched up to this.",
    )
    serving_queue_delay_ms: float = Field(
        2.0,
        ge=0,
        le=1000,
        description="POST /v1/forecast: longest a queued series waits for others to fill its "
        "batch (a full batch runs at once; the next batch takes what queued meanwhile).",
    )
    serving_model_instances: int = Field(
        2,
        ge=1,
        le=64,
        description="POST /v1/forecast: model runs at once, each on a thread beside the "
        "stream's (the event loop parses and encodes requests meanwhile).",
    )
    serving_max_series_per_request: int = Field(
        1000, ge=1, le=100_000, description="POST /v1/forecast: most series in one request."
    )
    serving_max_body_bytes: int = Field(
        16 * 1024 * 1024,
        ge=1024,
        le=1024 * 1024 * 1024,
        description="POST /v1/forecast: largest request body (413 beyond it).",
    )
    serving_max_pending_series: int = Field(
        20_000,
        ge=1,
        description="POST /v1/forecast: series queued for the model at most; a request that "
        "would queue more is refused with 429 (the stream keeps its share of the model).",
    )
    log_level: Literal["debug", "info", "warn", "error"] = Field(
        "info", description="Log level of the worker and the commands."
    )

    @model_validator(mode="after")
    def _check_grid(self) -> Settings:
        if self.resolution_seconds <= 0 or 86400 % self.resolution_seconds:
            raise ValueError(
                f"STREAMER_RESOLUTION_SECONDS={self.resolution_seconds} must divide 86400 "
                "(900 for 15 minutes, 1800 for 30 minutes)"
            )
        if len(self.watched_group_ids) > MAX_WATCHED_GROUPS:
            raise ValueError(
                f"STREAMER_WATCHED_GROUPS names {len(self.watched_group_ids)} groups; at most "
                f"{MAX_WATCHED_GROUPS} (each is a Prometheus series of its own)"
            )
        if not is_known_zone(self.time_zone):
            raise ValueError(
                f"STREAMER_TIME_ZONE={self.time_zone!r} is not an IANA zone name "
                "(e.g. Europe/London, Australia/Sydney, UTC)"
            )
        if self.allowed_lateness_slots > self.lookback_slots:
            raise ValueError(
                "STREAMER_ALLOWED_LATENESS_SLOTS must not exceed STREAMER_LOOKBACK_SLOTS "
                f"({self.allowed_lateness_slots} > {self.lookback_slots})"
            )
        return self

    @model_validator(mode="after")
    def _check_web_tls(self) -> Settings:
        pair = (self.web_tls_certfile, self.web_tls_keyfile)
        if (pair[0] is None) != (pair[1] is None):
            raise ValueError(
                "STREAMER_WEB_TLS_CERTFILE and STREAMER_WEB_TLS_KEYFILE go together: set both "
                "(HTTPS) or neither (HTTP)"
            )
        for variable, path in zip(
            ("STREAMER_WEB_TLS_CERTFILE", "STREAMER_WEB_TLS_KEYFILE"), pair, strict=True
        ):
            if path is not None and not path.is_file():
                raise ValueError(f"{variable}={path} is not a readable file")
        if self.api_keys_file is not None and not self.api_keys_file.is_file():
            raise ValueError(f"STREAMER_API_KEYS_FILE={self.api_keys_file} is not a readable file")
        return self

    @model_validator(mode="after")
    def _check_kafka_security(self) -> Settings:
        problem = _kafka_security_problem(self)
        if problem:
            raise ValueError(problem)
        return self

    def to_env(self) -> dict[str, str]:
        """These settings as ``STREAMER_*`` variables, to hand to a child process.

        Secrets are included as they are (a child cannot connect otherwise): pass the result
        as an environment, never print or log it. ``repr``, ``str`` and ``streamer settings``
        show secrets masked.
        """
        env: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):  # the child needs the secret itself
                value = value.get_secret_value()
            if value is not None:
                env[env_name(name)] = str(value)
        return env

    @property
    def watched_group_ids(self) -> frozenset[str]:
        """The groups of STREAMER_WATCHED_GROUPS."""
        return frozenset(g.strip() for g in self.watched_groups.split(",") if g.strip())

    @property
    def kafka_dir(self) -> Path:
        return self.state_dir / "kafka"

    @property
    def worker_dir(self) -> Path:
        return self.state_dir / "worker"

    @property
    def slots_per_day(self) -> int:
        return 86400 // self.resolution_seconds

    @property
    def compression_type(self) -> str | None:
        """The producers' ``compression_type`` (None: uncompressed)."""
        return None if self.kafka_compression == "none" else self.kafka_compression

    @property
    def max_interval_kwh(self) -> float:
        return self.max_power_kw * self.resolution_seconds / 3600.0


def _kafka_security_problem(settings: Settings) -> str | None:
    """The first inconsistency of the Kafka security settings, as a sentence (None if fine)."""
    protocol = settings.kafka_security_protocol
    sasl = protocol.startswith("SASL_")
    tls = protocol.endswith("SSL")
    if sasl and not (settings.kafka_sasl_username and settings.kafka_sasl_password):
        return (
            f"STREAMER_KAFKA_SECURITY_PROTOCOL={protocol} needs STREAMER_KAFKA_SASL_USERNAME "
            "and STREAMER_KAFKA_SASL_PASSWORD"
        )
    if not sasl and (settings.kafka_sasl_username or settings.kafka_sasl_password):
        return (
            "STREAMER_KAFKA_SASL_USERNAME/PASSWORD are set but "
            f"STREAMER_KAFKA_SECURITY_PROTOCOL={protocol} does not use SASL; "
            "set it to SASL_SSL (or SASL_PLAINTEXT)"
        )
    if protocol == "SASL_PLAINTEXT" and settings.kafka_sasl_mechanism == "PLAIN":
        return (
            "STREAMER_KAFKA_SASL_MECHANISM=PLAIN would send the password unencrypted over "
            "SASL_PLAINTEXT; use STREAMER_KAFKA_SECURITY_PROTOCOL=SASL_SSL or a SCRAM mechanism"
        )
    files = {
        "STREAMER_KAFKA_SSL_CAFILE": settings.kafka_ssl_cafile,
        "STREAMER_KAFKA_SSL_CERTFILE": settings.kafka_ssl_certfile,
        "STREAMER_KAFKA_SSL_KEYFILE": settings.kafka_ssl_keyfile,
    }
    for variable, path in files.items():
        if path is None:
            continue
        if not tls:
            return f"{variable} is set but STREAMER_KAFKA_SECURITY_PROTOCOL={protocol} is not TLS"
        if not path.is_file():
            return f"{variable}={path} is not a readable file"
    if settings.kafka_ssl_keyfile is not None and settings.kafka_ssl_certfile is None:
        return "STREAMER_KAFKA_SSL_KEYFILE is set without STREAMER_KAFKA_SSL_CERTFILE"
    return None


def env_name(field: str) -> str:
    """The environment variable that sets ``field``."""
    return ENV_PREFIX + field.upper()


def load_settings(**overrides: object) -> Settings:
    """Build the settings once, turning validation errors into one readable sentence each."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = [str(part) for part in err["loc"]]
            where = env_name(loc[0]) if loc else "STREAMER_* settings"
            problems.append(f"{where}: {err['msg']}")
        raise SettingsError(
            "Invalid configuration: " + "; ".join(problems) + ". Fix the variable and restart."
        ) from None
