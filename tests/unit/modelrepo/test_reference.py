"""Reference histograms for drift."""

from __future__ import annotations

import numpy as np
import pytest

from streamer.modelrepo import feature_histograms, histogram_proportions


def test_histogram_proportions_by_hand() -> None:
    values = [0.0, 0.1, 0.5, 0.9, 1.0, 5.0, -3.0, np.nan]
    # bins [0, .5), [.5, 1]; -3 joins the first bin, 5 the last, NaN is ignored
    assert histogram_proportions(values, [0.0, 0.5, 1.0]).tolist() == pytest.approx([3 / 7, 4 / 7])
    assert histogram_proportions([np.nan], [0.0, 1.0]).tolist() == [0.0]


def test_feature_histograms_sum_to_one_and_handle_constants() -> None:
    rng = np.random.default_rng(0)
    inputs = np.stack([rng.normal(size=(50, 10)), np.ones((50, 10))], axis=-1)
    refs = feature_histograms(inputs, ("load_scaled", "is_missing"), bins=10)
    assert [r.feature for r in refs] == ["load_scaled", "is_missing"]
    assert sum(refs[0].proportions) == pytest.approx(1.0, abs=1e-9)
    assert len(refs[0].bin_edges) == 11
    assert refs[1].bin_edges == (0.5, 1.5) and refs[1].proportions == (1.0,)
    with pytest.raises(ValueError, match="features"):
        feature_histograms(inputs, ("only_one",))
