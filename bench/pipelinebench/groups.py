"""Group forecasts at fleet scale, in process: what grouping costs per meter and slot (issue 17).

One slot of a fleet of ``meters`` meters in ``groups`` feeders (each meter also in one of
``groups // 50`` substations), the way a worker does it: the meter side turns the slot's
forecasts and readings into contribution records (expected values, by group, JSON); the group
side decodes each, loads the group's state from its bytes, applies the members' forecasts and
readings, issues the group forecast and the realised total with its calibration, encodes the
group-forecasts record and stores the state bytes again. Timed over ``slots`` slots after one
warm-up slot; the ceiling in the same run is the raw ONNX session's time per forecast at batch
256 (what forecasting the same meters costs at the least), so the share says what grouping adds.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from pipelinebench.onnx_ceiling import onnx_rates
from streamer.contract.forecast_record import ForecastRecord
from streamer.groups.calibration import GroupCalibrator
from streamer.groups.contributions import Contribution, contributions_of
from streamer.groups.group_state import GroupConfig, GroupState
from streamer.groups.membership import GroupRef, encode_membership
from streamer.groups.membership_view import MembershipView
from streamer.groups.records import group_forecast_json

RES_MS = 1_800_000
ORIGIN = 1_000_000
LEVELS = (0.1, 0.5, 0.9)


def groups_phase(
    models_dir: Path, *, meters: int = 100_000, groups: int = 1_000, slots: int = 3
) -> dict[str, Any]:
    horizon = 48
    config = GroupConfig(horizon_slots=horizon, resolution_seconds=1800, lateness_seconds=600)
    view = MembershipView()
    substations = max(1, groups // 50)
    ids = [f"m-{i:06d}" for i in range(meters)]
    for i, meter in enumerate(ids):
        view.apply(
            meter,
            encode_membership(
                [GroupRef(f"f-{i % groups}", "feeder"), GroupRef(f"s-{i % substations}", "sub")]
            ),
        )
    rng = np.random.default_rng(7)
    base = rng.gamma(2.0, 0.15, size=(meters, 1))
    stored: dict[str, bytes] = {}
    prior = GroupCalibrator(config.calibration.for_prior())
    timings: list[dict[str, float]] = []
    contribution_bytes = records = 0
    for k in range(slots + 1):
        origin = ORIGIN + k
        p50 = base * (1.0 + 0.1 * rng.standard_normal((meters, horizon)))
        quantiles = np.stack([0.6 * p50, p50, 1.6 * p50], axis=2)
        ends = np.arange(1, horizon + 1, dtype=np.int64)
        forecasts = [
            ForecastRecord(
                meter,
                0,
                origin * RES_MS,
                "lstm",
                "2",
                False,
                1800,
                1.0,
                ends,
                p50[i],
                quantiles[i],
                LEVELS,
            )
            for i, meter in enumerate(ids)
        ]
        actuals = [(meter, origin, float(base[i, 0])) for i, meter in enumerate(ids)]
        started = time.perf_counter()
        touched = contributions_of(forecasts, actuals, view, RES_MS)
        wire = [c.to_bytes() for c in touched.values()]
        meter_side = time.perf_counter() - started
        started = time.perf_counter()
        out_bytes = 0
        for raw in wire:
            contribution = Contribution.from_bytes(raw)
            previous = stored.get(contribution.group_id)
            state = (
                GroupState(contribution.group_id, contribution.kind, config)
                if previous is None
                else GroupState.from_bytes(previous, config)
            )
            state.set_members(view.members_of(contribution.group_id))
            for meter, o, values in contribution.forecasts:
                state.add_forecast(meter, o, values)
            for meter, slot, kwh in contribution.actuals:
                state.add_actual(meter, slot, kwh)
            now = (origin + 1) * RES_MS
            for issued in state.issue(now, prior):
                out_bytes += len(
                    group_forecast_json(
                        issued, resolution_seconds=1800, levels=LEVELS, issued_ms=now
                    )
                )
            state.realise(now, prior)
            stored[contribution.group_id] = state.to_bytes()
        group_side = time.perf_counter() - started
        if k == 0:
            continue  # warm-up
        contribution_bytes += sum(len(w) for w in wire)
        records += len(wire)
        timings.append({"meter_side_s": meter_side, "group_side_s": group_side})
    meter_s = float(np.median([t["meter_side_s"] for t in timings]))
    group_s = float(np.median([t["group_side_s"] for t in timings]))
    per_meter_us = (meter_s + group_s) / meters * 1e6
    ceiling = onnx_rates(models_dir / "lstm" / "2", [256], ["CPUExecutionProvider"])
    session_per_s = ceiling["results"][0]["session_forecasts_per_s"]
    session_us = 1e6 / session_per_s
    slot_seconds = meter_s + group_s
    return {
        "meters": meters,
        "groups": groups + substations,
        "feeders": groups,
        "substations": substations,
        "slots_timed": slots,
        "meter_side_s_per_slot": round(meter_s, 3),
        "group_side_s_per_slot": round(group_s, 3),
        "seconds_per_slot": round(slot_seconds, 3),
        "us_per_meter": round(per_meter_us, 2),
        "meters_per_s": round(meters / slot_seconds, 1),
        "slot_seconds": 1800,
        "keeps_up": slot_seconds < 1800,
        "headroom": round(1800 / slot_seconds, 1),
        "contribution_bytes_per_meter": round(contribution_bytes / slots / meters, 1),
        "contribution_records_per_slot": records // slots,
        "state_bytes_per_group": round(float(np.mean([len(v) for v in stored.values()])), 0),
        "group_forecast_bytes": out_bytes // max(1, len(stored)),
        "session_us_per_forecast": round(session_us, 2),
        "ratio_to_session": round(per_meter_us / session_us, 3),
        "ceiling": ceiling,
    }
