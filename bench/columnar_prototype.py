"""Prototype for issue 14: the batch path's per-meter work over a columnar store, timed.

Not the worker's code: a measurement of what the common case would cost if a partition's
meters lived in arrays (one row per meter) instead of one Python object graph per meter. The
common case is the forecasting bench's: each meter of the batch has one reading, for the slot
after its head, and is due a forecast. The prototype does per batch, as numpy passes over the
batch's rows:

- the window update (value and flag into the ring at the new slot, the head moved);
- scoring: the ledger's entries for the slot taken and cleared (one pass per tracked horizon),
  the fleet prior stepped match by match in the worker's order (a plain loop: the one
  sequential part), each meter's calibration stepped on the prior as it stood at its match,
  rolling accuracy and the Page-Hinkley detector of the one-slot-ahead residual;
- the models' inputs: the windows gathered oldest first, imputed and built with the worker's own
  ``impute_rows`` and ``build_inputs``;
- the forecasts kept: the ledger's new entries (float16), the calibrated bands;
- each meter's record bytes (its rows' slices joined behind a header), since a changelog still
  needs one value per meter.

It leaves out what the worker does per message or per forecast whatever the store (parsing the
JSON, the ONNX session, the forecast JSON, Kafka) and compares with the same scope of the
worker's ``BatchProcessor``: ``begin`` (parse and group) is timed apart and subtracted, the
session is replaced by fixed outputs.

    .venv/bin/python bench/columnar_prototype.py            # 2,000 meters, batches of 2,000
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import statistics
import struct
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streamer.accuracy.interval_calibration import (  # noqa: E402
    MAX_LOG,
    CalibrationConfig,
    calibrate_quantiles,
)
from streamer.accuracy.ledger_config import DEFAULT_HORIZONS  # noqa: E402
from streamer.drift.page_hinkley import PageHinkleyConfig  # noqa: E402
from streamer.inference.features import FeatureSpec, build_inputs  # noqa: E402
from streamer.state.imputation import impute_rows  # noqa: E402

LOOKBACK = 336
HORIZON = 48
TRACKED = DEFAULT_HORIZONS
OFFSETS = tuple(int(x) for x in np.cumsum((0, *TRACKED[:-1])))
RING = sum(TRACKED)
RES_MS = 1_800_000
# the worker's defaults: its interval calibration (and the fleet prior's step) and detector
CALIBRATION = CalibrationConfig(horizons=TRACKED)
STEP, LOW, HIGH = CALIBRATION.step, CALIBRATION.low, CALIBRATION.high
PRIOR_STEP = CALIBRATION.for_prior().step
_PH = PageHinkleyConfig()
PH_ALPHA, PH_DELTA, PH_THRESHOLD, PH_MIN = _PH.alpha, _PH.delta, _PH.threshold, _PH.min_instances
#: for each forecast step, the tracked horizon whose calibration it uses
BUCKET = CALIBRATION.bucket_of_steps(HORIZON)
#: a detector's statistics when fresh or just fired: n, mean, up, down, min(up), max(down)
PH_FRESH = (0.0, 0.0, 0.0, 0.0, np.inf, -np.inf)
DECAY = 0.5 ** (1 / 240.0)
OBSERVED = 1
_HEADER = struct.Struct("<2sBHq")
#: two float16, to round a pair of floats as the calibration's storage does
_HALF_PAIR = struct.Struct("<2e")


class ColumnarStore:
    """One partition's meters, a row each."""

    def __init__(self, meters: int, rng: np.random.Generator, head: int) -> None:
        self.values = rng.gamma(2.0, 0.2, (meters, LOOKBACK)).astype(np.float32)
        self.flags = np.full((meters, LOOKBACK), OBSERVED, dtype=np.uint8)
        self.head = np.full(meters, head, dtype=np.int64)
        self.ledger = np.full((meters, RING, 4), np.nan, dtype=np.float16)
        self.ledger_head = np.full(meters, head, dtype=np.int64)
        self.cal = np.zeros((meters, len(TRACKED), 2), dtype=np.float64)  # float16 values
        self.cal_count = np.zeros((meters, len(TRACKED)), dtype=np.uint16)
        self.prior = np.zeros((len(TRACKED), 2), dtype=np.float64)
        self.acc = np.zeros((meters, 4), dtype=np.float64)  # n, weight, abs, smape
        self.ph = np.tile(np.array(PH_FRESH), (meters, 1))  # n, mean, up, down, min_up, max_down

    def apply(self, rows: np.ndarray, slot: np.ndarray, kwh: np.ndarray) -> None:
        """The fast path: each row's reading is for the slot after its head."""
        ring = slot % LOOKBACK
        self.values[rows, ring] = kwh
        self.flags[rows, ring] = OBSERVED
        self.head[rows] = slot

    def score(self, rows: np.ndarray, slot: np.ndarray, actual: np.ndarray) -> int:
        """Match each row's actual with its kept forecasts for ``slot``; matches made.

        The fleet prior is stepped match by match in the worker's order (batch order, then
        horizon), as the worker steps it, in a plain loop (the one sequential part): each
        meter's band is judged on the prior as it stood at its match, and the meters' own
        updates, independent of one another, are array passes."""
        lead = slot - self.ledger_head[rows]
        found: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []
        for j, (h, offset) in enumerate(zip(TRACKED, OFFSETS, strict=True)):
            at = offset + slot % h
            entries = self.ledger[rows, at].astype(np.float64)  # (B, 4): point, p10, p50, p90
            hit = np.flatnonzero(~np.isnan(entries[:, 0]) & (lead <= h) & (lead > 0))
            if hit.size:
                self.ledger[rows[hit], at[hit]] = np.nan
                found.append((j, hit, entries[hit], actual[hit]))
        if not found:
            return 0
        position = np.concatenate([hit for _, hit, _, _ in found])
        horizon = np.concatenate([np.full(hit.size, j) for j, hit, _, _ in found])
        entries = np.concatenate([e for _, _, e, _ in found])
        actuals = np.concatenate([a for _, _, _, a in found])
        order = np.lexsort((horizon, position))  # batch order, then horizon
        position, horizon, entries, actuals = (
            position[order],
            horizon[order],
            entries[order],
            actuals[order],
        )
        # the prior, match by match: the values each match was judged with, and its steps
        used = np.empty((position.size, 2))
        prior = self.prior.tolist()
        for k, (j, p10, p50, p90, a) in enumerate(
            zip(
                horizon.tolist(),
                entries[:, 1].tolist(),
                entries[:, 2].tolist(),
                entries[:, 3].tolist(),
                actuals.tolist(),
                strict=True,
            )
        ):
            low, high = prior[j]
            used[k] = low, high
            low += (
                PRIOR_STEP * (1 - LOW)
                if a < p50 - (p50 - p10) * math.exp(low)
                else -PRIOR_STEP * LOW
            )
            high += (
                PRIOR_STEP * HIGH
                if a > p50 + (p90 - p50) * math.exp(high)
                else -PRIOR_STEP * (1 - HIGH)
            )
            prior[j] = list(
                _HALF_PAIR.unpack(
                    _HALF_PAIR.pack(
                        min(max(low, -MAX_LOG), MAX_LOG), min(max(high, -MAX_LOG), MAX_LOG)
                    )
                )
            )
        self.prior = np.array(prior)
        r = rows[position]
        p10, p50, p90 = entries[:, 1], entries[:, 2], entries[:, 3]
        own = self.cal[r, horizon]
        blended = own + used
        below = actuals < p50 - (p50 - p10) * np.exp(blended[:, 0])
        above = actuals > p50 + (p90 - p50) * np.exp(blended[:, 1])
        moves = np.stack(
            [
                np.where(below, STEP * (1 - LOW), -STEP * LOW),
                np.where(above, STEP * HIGH, -STEP * (1 - HIGH)),
            ],
            axis=1,
        )
        self.cal[r, horizon] = np.clip(own + moves, -MAX_LOG, MAX_LOG).astype(np.float16)
        self.cal_count[r, horizon] = np.minimum(
            self.cal_count[r, horizon].astype(np.int64) + 1, 65535
        )
        # accuracy, one pass per horizon (a meter's matches in horizon order)
        for j in range(len(TRACKED)):
            pick = horizon == j
            if not pick.any():
                continue
            rj, a, f = r[pick], actuals[pick], p50[pick]
            acc = self.acc[rj]
            error = np.abs(a - f)
            denominator = np.abs(a) + np.abs(f)
            acc[:, 0] += 1
            acc[:, 1] = DECAY * acc[:, 1] + 1.0
            acc[:, 2] = DECAY * acc[:, 2] + error
            smape = np.divide(
                200.0 * error, denominator, out=np.zeros_like(error), where=denominator > 0
            )
            acc[:, 3] = DECAY * acc[:, 3] + smape
            self.acc[rj] = acc
            if TRACKED[j] == 1:  # Page-Hinkley on the one-slot-ahead residual
                lo, hi = entries[pick, 1], entries[pick, 3]
                sd = np.maximum(hi - lo, 1e-3) / 2.5631031310892007
                z = np.clip((a - f) / sd, -5.0, 5.0)
                ph = self.ph[rj]
                ph[:, 0] += 1
                ph[:, 1] += (z - ph[:, 1]) / ph[:, 0]
                deviation = z - ph[:, 1]
                ph[:, 2] = PH_ALPHA * ph[:, 2] + deviation - PH_DELTA
                ph[:, 3] = PH_ALPHA * ph[:, 3] + deviation + PH_DELTA
                ph[:, 4] = np.minimum(ph[:, 4], ph[:, 2])
                ph[:, 5] = np.maximum(ph[:, 5], ph[:, 3])
                fired = (ph[:, 0] >= PH_MIN) & (
                    (ph[:, 2] - ph[:, 4] > PH_THRESHOLD) | (ph[:, 5] - ph[:, 3] > PH_THRESHOLD)
                )
                ph[fired] = PH_FRESH
                self.ph[rj] = ph
        return int(position.size)

    def windows(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The rows' windows oldest first, their flags and their head slots' ends."""
        order = (self.head[rows, None] + 1 + np.arange(LOOKBACK)[None, :]) % LOOKBACK
        values = np.take_along_axis(self.values[rows], order, axis=1)
        flags = np.take_along_axis(self.flags[rows], order, axis=1)
        return values, flags, self.head[rows] * RES_MS

    def keep(
        self, rows: np.ndarray, origin: np.ndarray, point: np.ndarray, quantiles: np.ndarray
    ) -> np.ndarray:
        """Keep the forecasts in the ledger; the calibrated bands ``(B, H, 3)``."""
        for h, offset in zip(TRACKED, OFFSETS, strict=True):
            entry = np.concatenate([point[:, h - 1 : h], quantiles[:, h - 1, :]], axis=1)
            self.ledger[rows, offset + origin % h] = np.clip(entry, -65504, 65504).astype(
                np.float16
            )
        self.ledger_head[rows] = origin
        multipliers = np.exp(self.cal[rows][:, BUCKET, :] + self.prior[BUCKET][None])  # (B, H, 2)
        return calibrate_quantiles(
            quantiles, (LOW, 0.5, HIGH), 1, multipliers[:, :, 0], multipliers[:, :, 1]
        )

    def record_bytes(self, rows: np.ndarray, partition: int, offsets: np.ndarray) -> list[bytes]:
        """Each row's record: the window as 2-byte codes and flag bits, the ledger, the
        calibration, accuracy and detector, behind a header (the worker's record is of this
        size; its exact layout is not reproduced)."""
        codes = np.clip(np.rint(self.values[rows] * 1000.0), 0, 65535).astype("<u2")
        flag_bits = np.packbits(self.flags[rows] == OBSERVED, axis=1)
        ledger = self.ledger[rows].reshape(rows.size, -1)
        cal = self.cal[rows].astype("<f2").reshape(rows.size, -1)
        counts = self.cal_count[rows]
        acc, ph = self.acc[rows], self.ph[rows]
        heads = self.head[rows]
        out = []
        pack = _HEADER.pack
        for i, offset in enumerate(offsets.tolist()):
            out.append(
                b"".join(
                    (
                        pack(b"MR", 5, partition, offset),
                        heads[i].tobytes(),
                        codes[i].tobytes(),
                        flag_bits[i].tobytes(),
                        ledger[i].tobytes(),
                        cal[i].tobytes(),
                        counts[i].tobytes(),
                        acc[i].tobytes(),
                        ph[i].tobytes(),
                    )
                )
            )
        return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = np.random.default_rng(5)
    meters, batch = args.meters, args.batch
    head0 = 1_000_000
    store = ColumnarStore(meters, rng, head0)
    spec = FeatureSpec(
        features=("load_scaled", "is_missing", "tod_sin", "tod_cos", "dow_sin", "dow_cos"),
        lookback_slots=LOOKBACK,
        resolution_seconds=RES_MS // 1000,
    )
    point = rng.gamma(2.0, 0.2, (batch, HORIZON))
    quantiles = np.stack([point * 0.6, point, point * 1.5], axis=2)
    phases: dict[str, list[float]] = {
        k: [] for k in ("apply", "score", "windows", "keep", "records", "build_inputs")
    }
    matches: list[int] = []
    for round_ in range(args.rounds):
        rows = rng.permutation(meters)[:batch]
        slot = store.head[rows] + 1
        kwh = rng.gamma(2.0, 0.2, batch).astype(np.float32)
        marks = [time.thread_time()]
        store.apply(rows, slot, kwh)
        marks.append(time.thread_time())
        matches.append(store.score(rows, slot, kwh.astype(np.float64)))
        marks.append(time.thread_time())
        imputed = []
        for start in range(0, batch, 256):  # the worker's chunks of 256 meters
            part = rows[start : start + 256]
            values, flags, ends = store.windows(part)
            imputed.append((impute_rows(values, flags, 48, 4)[0], ends))
        marks.append(time.thread_time())
        inputs_cpu = time.thread_time()
        for window, ends in imputed:  # the same call in the worker (its forecaster call)
            build_inputs(window, ends, spec)
        inputs_cpu = time.thread_time() - inputs_cpu
        marks.append(time.thread_time())
        store.keep(rows, slot, point, quantiles)
        marks.append(time.thread_time())
        store.record_bytes(rows, 0, slot)
        marks.append(time.thread_time())
        if round_ >= 3:  # the first rounds fill the ledger
            spans = [b - a for a, b in itertools.pairwise(marks)]
            del spans[3]  # build_inputs, timed apart
            for name, seconds in zip(phases, [*spans, inputs_cpu], strict=True):
                phases[name].append(seconds / batch * 1e6)
    us = {name: round(statistics.median(v), 2) for name, v in phases.items()}
    scope = round(sum(v for k, v in us.items() if k != "build_inputs"), 2)
    return {
        "meters": meters,
        "batch": batch,
        "rounds": args.rounds,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "matches_per_forecast": round(statistics.median(matches[3:]) / batch, 2),
        "cpu_us_per_forecast": us,
        "prototype_us_per_forecast": scope,
    }


def worker_scope(rounds: int) -> dict[str, float]:
    """The worker's ``BatchProcessor`` on the same shape of batch (``processor_bench``: 2,000
    meters with full windows, one reading each, every one due a forecast): CPU per forecast of
    ``process`` outside the forecaster call (which holds ``build_inputs`` and the session) and
    outside ``begin`` (parsing and grouping the messages)."""
    sys.path.insert(0, str(ROOT / "bench"))
    import processor_bench

    from streamer.pipeline.batch_processor import BatchProcessor

    spent = [0.0]
    begin = BatchProcessor.begin

    def timed_begin(self: BatchProcessor, *args: Any, **kwargs: Any) -> Any:
        started = time.process_time()
        try:
            return begin(self, *args, **kwargs)
        finally:
            spent[0] += time.process_time() - started

    args = argparse.Namespace(
        meters=2000,
        rounds=rounds,
        warmup_rounds=3,
        lookback_slots=LOOKBACK,
        session_repeats=2,
        providers="cpu",
        seed=7,
        missing=0.0,
        profile=0,
    )
    BatchProcessor.begin = timed_begin  # type: ignore[method-assign]
    try:
        report = processor_bench.run(args)
    finally:
        BatchProcessor.begin = begin  # type: ignore[method-assign]
    per = report["per_forecast"]
    begin_us = spent[0] / (2000 * (rounds + 3)) * 1e6
    return {
        "process_cpu_us": per["process_cpu_us"],
        "forecaster_cpu_us": per["forecaster_cpu_us"],
        "begin_cpu_us": round(begin_us, 2),
        "same_scope_us": round(per["process_cpu_us"] - per["forecaster_cpu_us"] - begin_us, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--meters", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument(
        "--no-compare", action="store_true", help="leave out the worker's BatchProcessor run"
    )
    args = parser.parse_args()
    report = run(args)
    if not args.no_compare:
        worker = worker_scope(rounds=8)
        report["worker"] = worker
        report["prototype_share_of_worker"] = round(
            report["prototype_us_per_forecast"] / worker["same_scope_us"], 3
        )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
