"""The series names a registry exports, for checking dashboards and alert rules against it."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

# The sample names each metric type exposes besides (or instead of) the family name.
_SUFFIXES: dict[str, tuple[str, ...]] = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "gauge": ("",),
    "info": ("_info",),
    "stateset": ("",),
    "enum": ("",),
    "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
    "unknown": ("",),
}


def exported_metric_names(registry: CollectorRegistry) -> frozenset[str]:
    """Every series name ``registry`` can expose, whether or not a sample exists yet.

    A labelled metric with no child yet still counts (its family is known); a counter is
    ``<name>_total`` (and ``_created``), a histogram ``_bucket``, ``_count`` and ``_sum``.
    """
    names: set[str] = set()
    for family in registry.collect():
        for suffix in _SUFFIXES.get(family.type, ("",)):
            names.add(family.name + suffix)
        names.update(sample.name for sample in family.samples)
    return frozenset(names)
