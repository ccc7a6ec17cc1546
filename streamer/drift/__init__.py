"""Drift: concept drift on each meter's residuals, data drift of the model inputs.

Concept drift (per meter, state in the meter's table value):

* ``protocol``: :class:`DriftDetector` (``update(x) -> self``, ``drift_detected``, ``n``,
  ``reset``, ``to_bytes``, ``restore``, ``clone``); each class also has
  ``from_bytes(data, config)``.
* ``page_hinkley``: :class:`PageHinkley` (60 bytes of state). The recommended per-meter
  detector; its defaults are calibrated for standardised residuals of 30-minute slots.
* ``adwin``: :class:`Adwin` (at most 855 bytes with the defaults).
* ``residual``: :func:`standardized_residual`, the value to feed them:
  ``(actual - p50) / ((p90 - p10) / 2.563)``, clipped.
* ``calibration``: false-alarm rates and detection delays on synthetic streams
  (``python -m streamer.drift.calibration``).

Data drift (per worker, on a schedule):

* ``reference_histogram``: :class:`ReferenceHistogram` (from the model card's references or
  from a sample).
* ``population_stability``: :func:`psi`; ``kolmogorov_smirnov``: :func:`ks_statistic`,
  :func:`ks_pvalue`, :func:`ks_critical_value`.
* ``data_drift_monitor``: :class:`DataDriftMonitor` over a :class:`UniformReservoir` sample;
  :class:`DataDriftReport` of :class:`FeatureDrift`.

``sealed``: the byte envelope (magic, version, flags, parameter fingerprint, CRC-32) of the
stored states, shared with :mod:`streamer.accuracy`.
"""

from __future__ import annotations

from streamer.drift.adwin import Adwin, AdwinConfig
from streamer.drift.data_drift_monitor import (
    PSI_THRESHOLD,
    DataDriftMonitor,
    DataDriftReport,
    FeatureDrift,
)
from streamer.drift.errors import (
    DriftConfigError,
    DriftError,
    DriftInputError,
    DriftStateDecodeError,
)
from streamer.drift.kolmogorov_smirnov import (
    KS_THRESHOLD,
    ks_critical_value,
    ks_pvalue,
    ks_statistic,
)
from streamer.drift.page_hinkley import PageHinkley, PageHinkleyConfig
from streamer.drift.population_stability import psi
from streamer.drift.protocol import DriftDetector
from streamer.drift.reference_histogram import ReferenceHistogram
from streamer.drift.residual import standardized_residual
from streamer.drift.uniform_reservoir import UniformReservoir

__all__ = [
    "KS_THRESHOLD",
    "PSI_THRESHOLD",
    "Adwin",
    "AdwinConfig",
    "DataDriftMonitor",
    "DataDriftReport",
    "DriftConfigError",
    "DriftDetector",
    "DriftError",
    "DriftInputError",
    "DriftStateDecodeError",
    "FeatureDrift",
    "PageHinkley",
    "PageHinkleyConfig",
    "ReferenceHistogram",
    "UniformReservoir",
    "ks_critical_value",
    "ks_pvalue",
    "ks_statistic",
    "psi",
    "standardized_residual",
]
