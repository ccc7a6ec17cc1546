"""The global quantile LSTM (torch): ``(B, L, F)`` scaled inputs to ``(B, H, Q)`` quantiles.

- The lookback is cut into patches of ``patch_slots`` slots (``L / patch_slots`` LSTM steps of
  ``patch_slots * F`` values), which keeps a week of half-hours cheap on a CPU.
- An LSTM encoder's last hidden state goes through a linear head to ``H * Q`` values; a linear
  path from the scaled load over the whole lookback is added (it carries the daily and weekly
  pattern directly).
- Quantiles are monotone by construction: the ``0.5`` output is the median; each level below
  (above) it is the next one minus (plus) a softplus, so ``p10 <= p50 <= p90`` always.
- Initial LSTM states are zeros made inside ``forward`` from the input's batch size, so the
  exported ONNX graph has a dynamic batch axis and no frozen states.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional


class QuantileLstm(nn.Module):
    """See the module docstring."""

    def __init__(
        self,
        *,
        lookback_slots: int,
        horizon_slots: int,
        n_features: int,
        quantile_levels: tuple[float, ...],
        load_index: int,
        hidden_size: int = 64,
        num_layers: int = 1,
        patch_slots: int = 4,
    ) -> None:
        super().__init__()
        if lookback_slots % patch_slots:
            raise ValueError("lookback_slots must be a multiple of patch_slots")
        self.lookback_slots = lookback_slots
        self.horizon_slots = horizon_slots
        self.n_features = n_features
        self.quantile_levels = tuple(quantile_levels)
        self.median_index = self.quantile_levels.index(0.5)
        self.load_index = load_index
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.patch_slots = patch_slots
        self.steps = lookback_slots // patch_slots
        outputs = horizon_slots * len(self.quantile_levels)
        self.lstm = nn.LSTM(
            input_size=patch_slots * n_features,
            hidden_size=hidden_size,
            num_layers=num_layers,
            batch_first=True,
        )
        self.head = nn.Linear(hidden_size, outputs)
        self.skip = nn.Linear(lookback_slots, outputs)
        with torch.no_grad():
            self.skip.weight.zero_()
            self.skip.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = x.shape[0]
        steps = x.reshape(batch, self.steps, self.patch_slots * self.n_features)
        h0 = torch.zeros(self.num_layers, batch, self.hidden_size, dtype=x.dtype, device=x.device)
        c0 = torch.zeros(self.num_layers, batch, self.hidden_size, dtype=x.dtype, device=x.device)
        encoded, _ = self.lstm(steps, (h0, c0))
        raw = self.head(encoded[:, -1, :]) + self.skip(x[:, :, self.load_index])
        raw = raw.reshape(batch, self.horizon_slots, len(self.quantile_levels))
        return self._monotone(raw)

    def _monotone(self, raw: torch.Tensor) -> torch.Tensor:
        m = self.median_index
        levels: list[torch.Tensor] = [raw[:, :, m]]
        below = levels[0]
        for i in range(m - 1, -1, -1):
            below = below - functional.softplus(raw[:, :, i])
            levels.insert(0, below)
        above = levels[-1]
        for i in range(m + 1, len(self.quantile_levels)):
            above = above + functional.softplus(raw[:, :, i])
            levels.append(above)
        return torch.stack(levels, dim=-1)


def pinball_loss(
    predicted: torch.Tensor, target: torch.Tensor, levels: torch.Tensor
) -> torch.Tensor:
    """Mean pinball loss of ``(B, H, Q)`` quantiles against ``(B, H)`` targets, skipping NaN
    targets (a batch without any finite target gives 0)."""
    mask = torch.isfinite(target)
    safe = torch.where(mask, target, torch.zeros_like(target))
    diff = safe.unsqueeze(-1) - predicted
    loss = torch.maximum(levels * diff, (levels - 1.0) * diff)
    weights = mask.unsqueeze(-1).to(loss.dtype).expand_as(loss)
    total = weights.sum()
    return (loss * weights).sum() / torch.clamp(total, min=1.0)
