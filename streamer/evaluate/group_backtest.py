"""Group forecasts (feeders, substations, portfolios) scored in a backtest, as a worker makes them.

At each origin and for each forecaster, a group's forecast total is the sum of its members'
expected values (:func:`streamer.groups.expected.expected_kwh` of their quantiles); a member the
forecaster could not forecast (``valid=False``) is filled with its seasonal-naive-week point
from the same history window (its window's mean where even that is missing) and counted. The
realised total is the sum of the members' actuals; a slot where one of them is missing is
incomplete: counted and left out of the scores and of the learning.

Each forecaster has a :class:`~streamer.groups.calibration.GroupCalibrator` per group and a
prior learning every group's pairs (:class:`GroupCalibrationReplay`). At an origin every group
is published with what they know; its pairs (every scored step, with the realised total of the
step's target slot) are learnt only once the target slot is before a later origin, as a worker
learns when the readings arrive: the same no-leakage rule as
:mod:`streamer.evaluate.calibration_replay`.

Scores start after a warm-up: the origins in the first :data:`WARMUP_DAYS` days of the
held-out period are published and learnt from but not scored (a group needs
``min_pairs`` pairs per bucket before its own band is used, and with day-ahead origins the
first step of the day is seen once a day).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from streamer.accuracy.interval_calibration import level_column
from streamer.evaluate.errors import BacktestConfigError
from streamer.evaluate.grid import HistoryGrid, columns_before
from streamer.evaluate.report import GroupReport
from streamer.forecast.batch import ForecastBatch
from streamer.forecast.local_time import TimeZones
from streamer.forecast.seasonal_naive import seasonal_naive_week
from streamer.groups.calibration import GroupCalibrationConfig, GroupCalibrator
from streamer.groups.expected import expected_kwh
from streamer.groups.membership import GroupRef

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
#: Days at the start of the held-out period whose origins are not scored.
WARMUP_DAYS: Final = 7
#: The kind of a group given by id only.
DEFAULT_KIND: Final = "group"

GroupMembers = Mapping[str, Sequence[str]] | Mapping[GroupRef, Sequence[str]]


@dataclass(frozen=True, slots=True)
class ResolvedGroups:
    """Groups with their members' rows in the grid; groups with no member there are dropped."""

    refs: tuple[GroupRef, ...]
    rows: tuple[IntArray, ...]
    #: Distinct member ids not in the history (ignored).
    missing: int


def resolve_groups(groups: GroupMembers, meter_ids: Sequence[str]) -> ResolvedGroups:
    """Map member ids to grid rows; keys are group ids (kind ``group``) or ``GroupRef``s."""
    row_of = {meter: i for i, meter in enumerate(meter_ids)}
    refs: list[GroupRef] = []
    rows: list[IntArray] = []
    missing: set[str] = set()
    for key, members in sorted(groups.items(), key=lambda item: _ref(item[0])):
        ref = _ref(key)
        if isinstance(members, str):
            raise BacktestConfigError(
                f"group {ref.group_id!r}: members must be a sequence of meter ids, not a string"
            )
        present = sorted({row_of[m] for m in members if m in row_of})
        missing.update(m for m in members if m not in row_of)
        if present:
            refs.append(ref)
            rows.append(np.asarray(present, dtype=np.intp))
    if not refs:
        raise BacktestConfigError(
            "no group has a member in the history; check that the groups file names the "
            "history's meter ids"
        )
    return ResolvedGroups(tuple(refs), tuple(rows), len(missing))


def _ref(key: object) -> GroupRef:
    if isinstance(key, GroupRef):
        return key
    if isinstance(key, str):
        return GroupRef(key, DEFAULT_KIND)
    raise BacktestConfigError(f"a group is named by an id or a GroupRef, got {key!r}")


def group_sums(values: FloatArray, rows: Sequence[IntArray]) -> FloatArray:
    """``(G, ...)``: per group, the sum of its members' rows of ``values`` (NaN if any is)."""
    return np.stack([values[r].sum(axis=0) for r in rows])


class GroupCalibrationReplay:
    """One forecaster's group calibrators (and their prior) replayed origin by origin."""

    def __init__(self, groups: int, config: GroupCalibrationConfig) -> None:
        self.config = config
        self.prior = GroupCalibrator(config.for_prior())
        self.groups = [GroupCalibrator(config) for _ in range(groups)]
        # [origin, forecast totals (G, S) of the scored steps, steps learnt so far]
        self._pending: list[tuple[int, FloatArray, list[int]]] = []

    def learn_until(self, origin: int, totals: FloatArray) -> None:
        """Learn every queued pair whose target slot is before ``origin``; ``totals`` ``(G, T)``
        are the realised group totals of the whole grid."""
        chunks: list[tuple[IntArray, IntArray, FloatArray]] = []  # (targets, steps, F (G, n))
        still: list[tuple[int, FloatArray, list[int]]] = []
        for start, forecast, learnt in self._pending:
            upto = min(max(origin - start, 0), forecast.shape[1])
            if upto > learnt[0]:
                steps = np.arange(learnt[0] + 1, upto + 1)
                chunks.append((start + steps - 1, steps, forecast[:, learnt[0] : upto]))
                learnt[0] = upto
            if learnt[0] < forecast.shape[1]:
                still.append((start, forecast, learnt))
        self._pending = still
        if not chunks:
            return
        targets = np.concatenate([c[0] for c in chunks])
        steps = np.concatenate([c[1] for c in chunks])
        forecast = np.concatenate([c[2] for c in chunks], axis=1)
        order = np.argsort(targets, kind="stable")  # in time order, as the readings arrive
        targets, steps, forecast = targets[order], steps[order], forecast[:, order]
        actual = totals[:, targets]
        for g, calibrator in enumerate(self.groups):
            calibrator.update(steps, forecast[g], actual[g])
        # the prior sees the pairs slot by slot, every group's in turn
        self.prior.update(
            np.tile(steps, (len(self.groups), 1)).T.ravel(),
            forecast.T.ravel(),
            actual.T.ravel(),
        )

    def publish(
        self, origin: int, forecast: FloatArray
    ) -> tuple[FloatArray, FloatArray, npt.NDArray[np.bool_]]:
        """``(G, S)`` centres, ``(G, S, Q)`` quantiles and ``(G, S)`` calibrated flags of the
        forecast totals ``(G, S)`` (steps ``1..S``); the totals are queued for learning."""
        steps = np.arange(1, forecast.shape[1] + 1)
        bands = [c.publish(steps, forecast[g], self.prior) for g, c in enumerate(self.groups)]
        self._pending.append((origin, forecast.copy(), [0]))
        return (
            np.stack([b.mean_kwh for b in bands]),
            np.stack([b.quantiles_kwh for b in bands]),
            np.stack([b.calibrated for b in bands]),
        )


@dataclass(slots=True)
class _Scores:
    """Running sums of one (model, kind)."""

    origins: int = 0
    pairs: int = 0
    abs_error: float = 0.0
    error: float = 0.0
    total: float = 0.0
    expected_error: float = 0.0
    p50_error: float = 0.0
    covered: int = 0
    calibrated: int = 0
    naive_pairs_abs: float = 0.0
    naive_abs: float = 0.0
    meter_abs: float = 0.0
    meter_naive_abs: float = 0.0
    filled: int = 0
    incomplete: int = 0


class GroupBacktest:
    """Group forecasts of every forecaster of a backtest, scored per kind of group."""

    def __init__(
        self,
        grid: HistoryGrid,
        groups: GroupMembers,
        names: Sequence[str],
        levels: Sequence[tuple[float, ...]],
        config: GroupCalibrationConfig,
        *,
        horizon_slots: int,
        scored_slots: int,
        first_scored_origin: int,
        time_zone: str = "UTC",
    ) -> None:
        resolved = resolve_groups(groups, grid.meter_ids)
        self.refs, self.rows, self.missing = resolved.refs, resolved.rows, resolved.missing
        self.names, self.levels, self.config = list(names), list(levels), config
        self.scored_slots = scored_slots
        self.first_scored_origin = first_scored_origin
        self.kinds = sorted({ref.kind for ref in self.refs})
        self._kind_of = np.array([self.kinds.index(ref.kind) for ref in self.refs])
        self._kind_meters = [
            np.unique(
                np.concatenate(
                    [r for r, k in zip(self.rows, self._kind_of, strict=True) if k == kind]
                )
            )
            for kind in range(len(self.kinds))
        ]
        self.totals = group_sums(grid.kwh, self.rows)
        self._grid = grid
        self._res = grid.resolution_seconds
        zones = grid.zones(time_zone)
        self._group_zones = np.array([zones[r[0]] for r in self.rows])  # its first member's
        self._naive = seasonal_naive_week(horizon_slots, grid.resolution_seconds)
        self._replays = [GroupCalibrationReplay(len(self.refs), config) for _ in names]
        self._scores = [[_Scores() for _ in self.kinds] for _ in names]
        self._low = level_column(config.levels, 0.1)
        self._high = level_column(config.levels, 0.9)
        self.warmup_origins = 0
        # per origin
        self._origin = -1
        self._actual = np.empty((0, 0))
        self._complete = np.empty((0, 0), dtype=np.bool_)
        self._fill = np.empty((0, 0))
        self._meter_naive = np.empty((0, 0))
        self._group_naive = np.empty((0, 0))

    def start_origin(
        self, origin: int, actual: FloatArray, time_zone: TimeZones, day_slots: int
    ) -> None:
        """Prepare an origin: the members' fills and the seasonal-naive baselines (from the
        two weeks before ``origin``); ``actual`` ``(M, S)`` is NaN where a meter is not scored,
        ``day_slots`` the slots scored (fewer than ``S`` on a short local day)."""
        s = self.scored_slots
        self._origin = origin
        if origin < self.first_scored_origin:
            self.warmup_origins += 1
        naive_slots = 2 * self._naive.season_slots
        window = columns_before(self._grid.kwh, origin, naive_slots)
        end_ms = np.full(window.shape[0], self._grid.end_ms(origin - 1), dtype=np.int64)
        point = self._naive.forecast(window, end_ms, self._res, time_zone).point_kwh[:, :s]
        self._fill = np.where(np.isfinite(point), point, _row_means(window)[:, None])
        self._meter_naive = point
        self._group_naive = self._naive.forecast(
            columns_before(self.totals, origin, naive_slots),
            np.full(len(self.rows), end_ms[0], dtype=np.int64),
            self._res,
            self._group_zones,
        ).point_kwh[:, :s]
        total = group_sums(actual, self.rows)
        in_day = np.arange(s) < day_slots
        self._complete = np.isfinite(total) & in_day[None, :]
        self._actual = np.where(self._complete, total, np.nan)
        if origin >= self.first_scored_origin:
            # a slot of the day where some member's actual is missing: incomplete
            incomplete = (~np.isfinite(total) & in_day[None, :]).sum(axis=1)
            for scores in self._scores:
                for kind, score in enumerate(scores):
                    score.incomplete += int(incomplete[self._kind_of == kind].sum())

    def add(self, model: int, batch: ForecastBatch, actual: FloatArray) -> None:
        """Score forecaster ``model``'s batch at the current origin (``actual`` ``(M, S)``)."""
        s, origin = self.scored_slots, self._origin
        levels = self.levels[model]
        quantiles = batch.quantiles_kwh[:, :s]
        valid = batch.valid
        expected = np.where(valid[:, None], expected_kwh(quantiles, levels), self._fill)
        median = level_column(levels, 0.5)
        p50 = quantiles[:, :, median] if median is not None else batch.point_kwh[:, :s]
        p50 = np.where(valid[:, None], p50, self._fill)
        forecast = group_sums(expected, self.rows)
        p50_total = group_sums(p50, self.rows)
        replay = self._replays[model]
        replay.learn_until(origin, self.totals)
        centre, band, calibrated = replay.publish(origin, forecast)
        if origin < self.first_scored_origin:
            return
        target = self._actual
        ok = self._complete & np.isfinite(centre)
        meter_point = batch.point_kwh[:, :s]
        filled = np.array([int((~valid[r]).sum()) for r in self.rows])
        for kind in range(len(self.kinds)):
            score = self._scores[model][kind]
            mine = self._kind_of == kind
            mask = ok & mine[:, None]
            score.origins += 1
            score.pairs += int(mask.sum())
            error = np.where(mask, centre - target, 0.0)
            score.abs_error += float(np.abs(error).sum())
            score.error += float(error.sum())
            score.total += float(np.where(mask, target, 0.0).sum())
            score.expected_error += float(np.where(mask, forecast - target, 0.0).sum())
            score.p50_error += float(np.where(mask, p50_total - target, 0.0).sum())
            score.calibrated += int((mask & calibrated).sum())
            if self._low is not None and self._high is not None:
                inside = (band[:, :, self._low] <= target) & (target <= band[:, :, self._high])
                score.covered += int((mask & inside).sum())
            both = mask & np.isfinite(self._group_naive)
            score.naive_pairs_abs += float(np.where(both, np.abs(centre - target), 0.0).sum())
            score.naive_abs += float(np.where(both, np.abs(self._group_naive - target), 0.0).sum())
            rows = self._kind_meters[kind]
            member_actual = actual[rows]
            pair = (
                valid[rows, None]
                & np.isfinite(member_actual)
                & np.isfinite(self._meter_naive[rows])
                & np.isfinite(meter_point[rows])
            )
            score.meter_abs += float(
                np.where(pair, np.abs(meter_point[rows] - member_actual), 0.0).sum()
            )
            score.meter_naive_abs += float(
                np.where(pair, np.abs(self._meter_naive[rows] - member_actual), 0.0).sum()
            )
            score.filled += int(filled[mine].sum())

    def reports(self) -> tuple[GroupReport, ...]:
        """One report per (forecaster, kind), forecasters in order, kinds sorted."""
        nominal = (
            self.config.levels[self._high] - self.config.levels[self._low]
            if self._low is not None and self._high is not None
            else float("nan")
        )
        out = []
        for k, name in enumerate(self.names):
            for kind, label in enumerate(self.kinds):
                sc = self._scores[k][kind]
                mine = self._kind_of == kind
                out.append(
                    GroupReport(
                        model=name,
                        kind=label,
                        groups=int(mine.sum()),
                        members=int(self._kind_meters[kind].size),
                        origins=sc.origins,
                        pairs=sc.pairs,
                        mae_kwh=_ratio(sc.abs_error, sc.pairs),
                        mean_total_kwh=_ratio(sc.total, sc.pairs),
                        bias_percent=100.0 * _ratio(sc.error, sc.total),
                        expected_bias_percent=100.0 * _ratio(sc.expected_error, sc.total),
                        p50_bias_percent=100.0 * _ratio(sc.p50_error, sc.total),
                        coverage=_ratio(sc.covered, sc.pairs)
                        if self._low is not None
                        else float("nan"),
                        nominal_coverage=nominal,
                        mae_ratio=_ratio(sc.naive_pairs_abs, sc.naive_abs),
                        meter_mae_ratio=_ratio(sc.meter_abs, sc.meter_naive_abs),
                        filled_members=sc.filled,
                        incomplete_slots=sc.incomplete,
                        calibrated_share=_ratio(sc.calibrated, sc.pairs),
                    )
                )
        return tuple(out)


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("nan")


def _row_means(values: FloatArray) -> FloatArray:
    """Each row's mean of its finite values (0 where it has none)."""
    finite = np.isfinite(values)
    count = finite.sum(axis=1)
    total = np.where(finite, values, 0.0).sum(axis=1)
    out: FloatArray = np.where(count > 0, total / np.maximum(count, 1), 0.0)
    return out
