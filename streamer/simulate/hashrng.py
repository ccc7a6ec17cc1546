"""Counter-based random numbers: a value is a pure function of (seed, stream, counters).

The fleet must give the same number for meter ``i`` at slot ``s`` whether it is asked for one
slot or a year at once, and in any order. A sequential generator cannot do that; hashing the
coordinates with SplitMix64 can. All arithmetic is on ``uint64`` arrays, which wrap silently.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

U64 = npt.NDArray[np.uint64]
F64 = npt.NDArray[np.float64]

_GOLDEN: Final = np.uint64(0x9E3779B97F4A7C15)
_MIX1: Final = np.uint64(0xBF58476D1CE4E5B9)
_MIX2: Final = np.uint64(0x94D049BB133111EB)
_S30: Final = np.uint64(30)
_S27: Final = np.uint64(27)
_S31: Final = np.uint64(31)
_S11: Final = np.uint64(11)
_TO_UNIT: Final = 1.0 / float(1 << 53)


def splitmix64(x: U64) -> U64:
    """The SplitMix64 finaliser applied element-wise (``x`` must be an array, not a scalar)."""
    z = x + _GOLDEN
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    out: U64 = z ^ (z >> _S31)
    return out


def _as_u64(values: npt.ArrayLike) -> U64:
    array = np.atleast_1d(np.asarray(values))
    if array.dtype == np.uint64:
        return array
    return array.astype(np.int64).astype(np.uint64)


def hash_u64(seed: int, stream: int, *counters: npt.ArrayLike) -> U64:
    """Hash of ``(seed, stream, *counters)``; counters broadcast against each other."""
    state = splitmix64(_as_u64([seed]) ^ splitmix64(_as_u64([stream])))
    arrays = np.broadcast_arrays(*(_as_u64(c) for c in counters)) if counters else []
    for counter in arrays:
        state = splitmix64(state ^ counter)
    return state


def hash_uniform(seed: int, stream: int, *counters: npt.ArrayLike) -> F64:
    """Uniform numbers in ``[0, 1)`` with 53 random bits."""
    bits = hash_u64(seed, stream, *counters) >> _S11
    out: F64 = bits.astype(np.float64) * _TO_UNIT
    return out


def hash_normal(seed: int, stream: int, *counters: npt.ArrayLike) -> F64:
    """Standard normal numbers (Box-Muller on two hashed uniforms)."""
    bits = hash_u64(seed, stream, *counters)
    u1 = 1.0 - (bits >> _S11).astype(np.float64) * _TO_UNIT  # in (0, 1]
    u2 = (splitmix64(bits) >> _S11).astype(np.float64) * _TO_UNIT
    out: F64 = np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
    return out
