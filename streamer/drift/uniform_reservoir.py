"""A fixed-size uniform random sample of every row offered, whatever the batch sizes."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from streamer.drift.errors import DriftConfigError, DriftInputError

Float32Array = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.intp]


class UniformReservoir:
    """``capacity`` slots, each an independent uniform draw from all the rows offered since
    the last reset (a sample with replacement).

    Offering ``n`` rows after ``t``: each slot takes, with probability ``n / (t + n)``, a row
    drawn uniformly from the new ones, and keeps its row otherwise; by induction every slot is
    uniform over all ``t + n`` rows. The cost per call is ``O(capacity)`` whatever ``n`` (only
    the chosen rows are copied), and memory is fixed: ``capacity * 4 * columns`` bytes
    (float32). Duplicates are likely only while fewer rows than ``capacity`` were offered,
    which :attr:`effective_size` accounts for. Seeded, so the same calls give the same sample.

    >>> r = UniformReservoir(capacity=4, columns=1, seed=0)
    >>> r.add(np.arange(10.0).reshape(-1, 1)).sample().shape, r.rows_seen, r.effective_size
    ((4, 1), 10, 4)
    """

    __slots__ = ("_capacity", "_columns", "_filled", "_rng", "_rows", "_seen")

    def __init__(self, capacity: int, columns: int, *, seed: int = 0) -> None:
        if capacity < 1 or columns < 1:
            raise DriftConfigError(
                f"reservoir capacity and columns must be >= 1, got {capacity} and {columns}"
            )
        self._capacity = capacity
        self._columns = columns
        self._rng = np.random.default_rng(seed)
        self._rows: Float32Array = np.zeros((capacity, columns), dtype=np.float32)
        self._filled = False
        self._seen = 0

    @property
    def capacity(self) -> int:
        """Slots."""
        return self._capacity

    @property
    def rows_seen(self) -> int:
        """Rows offered since the last reset."""
        return self._seen

    @property
    def effective_size(self) -> int:
        """``min(capacity, rows_seen)``: the sample size to use for a p-value."""
        return min(self._capacity, self._seen)

    def add(self, rows: npt.ArrayLike, columns: IntArray | None = None) -> UniformReservoir:
        """Offer ``(N, C)`` rows; ``columns`` picks the reservoir's columns out of ``C`` (all
        when None). Returns ``self``."""
        data = np.asarray(rows)
        width = data.shape[1] if data.ndim == 2 else -1
        picked = width if columns is None else columns.size
        if data.ndim != 2 or picked != self._columns:
            raise DriftInputError(
                f"rows must be 2-D with {self._columns} columns picked, got shape {data.shape} "
                "(reshape model inputs to (-1, features) first)"
            )
        n = data.shape[0]
        if n == 0:
            return self
        if self._filled:
            take = np.flatnonzero(self._rng.random(self._capacity) < n / (self._seen + n))
        else:
            take = np.arange(self._capacity)
        chosen = data[self._rng.integers(0, n, size=take.size)]
        if columns is not None:
            chosen = chosen[:, columns]
        self._rows[take] = chosen
        self._filled = True
        self._seen += n
        return self

    def sample(self) -> Float32Array:
        """The ``(capacity, columns)`` sample (empty before the first row), read-only."""
        view = self._rows.view() if self._filled else self._rows[:0]
        view.setflags(write=False)
        return view

    def reset(self) -> None:
        """Forget the rows (the random stream goes on)."""
        self._filled = False
        self._seen = 0
