"""The "it trains through torch" check the interop tests share: Adam steps on an MSE loss."""

from __future__ import annotations

import torch


def mse_losses(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int,
               lr: float) -> list[float]:
    """The loss before each of ``steps`` Adam steps (learning rate ``lr``) fitting ``model(x)``
    to ``y``."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses
