"""The torch model and its loss."""

from __future__ import annotations

import subprocess
import sys

import torch

from streamer.train.model import QuantileLstm, pinball_loss


def test_pinball_loss_by_hand_and_nan_targets_are_skipped() -> None:
    levels = torch.tensor([0.1, 0.5, 0.9])
    predicted = torch.tensor([[[0.0, 1.0, 2.0], [0.0, 0.0, 0.0]]])  # (1, 2, 3)
    target = torch.tensor([[1.0, float("nan")]])
    # errors y - q = 1, 0, -1 -> 0.1 * 1, 0, (0.9 - 1) * -1 = 0.1 -> mean 0.2 / 3
    loss = pinball_loss(predicted, target, levels)
    assert abs(float(loss) - 0.2 / 3) < 1e-7
    assert float(pinball_loss(predicted, torch.full((1, 2), float("nan")), levels)) == 0.0


def test_quantiles_are_monotone_for_any_weights() -> None:
    torch.manual_seed(0)
    model = QuantileLstm(
        lookback_slots=16,
        horizon_slots=5,
        n_features=3,
        quantile_levels=(0.05, 0.1, 0.5, 0.9),
        load_index=0,
        hidden_size=4,
        patch_slots=4,
    )
    for param in model.parameters():
        torch.nn.init.normal_(param, std=3.0)
    out = model(torch.randn(9, 16, 3))
    assert out.shape == (9, 5, 4)
    assert bool((out[..., 1:] >= out[..., :-1]).all())


def test_train_main_without_torch_says_how_to_install_it() -> None:
    code = (
        "import sys\n"
        "sys.modules['torch'] = None  # as if the train extra were not installed\n"
        "from streamer.train import TrainError, train_main\n"
        "try:\n"
        "    train_main('h.csv', 'models/lstm/1')\n"
        "except TrainError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "pip install -e '.[train]'" in result.stdout
