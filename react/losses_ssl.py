"""Self-supervised objectives on two views of a batch: SimCLR's NT-Xent and VICReg."""

from __future__ import annotations

import torch
from torch.nn import functional as F


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Normalised-temperature cross entropy: each view's positive is the other view of its item,
    its negatives the other 2N - 2 views of the batch."""
    n = len(z1)
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)
    sim = z @ z.T / temperature
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return F.cross_entropy(sim, target)


def _off_diagonal(m: torch.Tensor) -> torch.Tensor:
    return m.flatten()[:-1].view(len(m) - 1, len(m) + 1)[:, 1:].flatten()


def vicreg(z1: torch.Tensor, z2: torch.Tensor, sim_weight: float = 25.0, std_weight: float = 25.0,
           cov_weight: float = 1.0) -> tuple[torch.Tensor, dict[str, float]]:
    """Variance-invariance-covariance loss; returns the weighted sum and its three terms."""
    z1, z2 = z1.float(), z2.float()
    n, d = z1.shape
    invariance = F.mse_loss(z1, z2)
    z1, z2 = z1 - z1.mean(0), z2 - z2.mean(0)
    std1, std2 = torch.sqrt(z1.var(0) + 1e-4), torch.sqrt(z2.var(0) + 1e-4)
    variance = 0.5 * (F.relu(1 - std1).mean() + F.relu(1 - std2).mean())
    cov1, cov2 = z1.T @ z1 / (n - 1), z2.T @ z2 / (n - 1)
    covariance = (_off_diagonal(cov1).pow(2).sum() + _off_diagonal(cov2).pow(2).sum()) / d
    loss = sim_weight * invariance + std_weight * variance + cov_weight * covariance
    parts = {"invariance": invariance, "variance": variance, "covariance": covariance}
    return loss, {k: v.item() for k, v in parts.items()}
