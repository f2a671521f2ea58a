"""REGNN training losses over a window's set of appropriate real reactions.

With ``latent`` the reactions mapped forward by the motor processor, ``centre`` the cognitive
output and ``decoded`` the reaction at the centre (motor inverse):

- ``recon``: MSE between ``decoded`` and the nearest appropriate reaction (``pair``: the real one);
- ``dist``: distribution loss: the nearest mapped reaction's MSE to the centre, plus (``all``) a
  hinge ``relu(mse_j - threshold)`` pulling every appropriate reaction into a ball around it;
- ``mid``: mid-level loss (``all``): spread of one window's mapped reactions around their mean;
- ``logdet``: ``-log|det J|`` per dimension (keeps the motor map from collapsing volume);
- ``smooth``: mean absolute frame-to-frame change of ``decoded``.

``kind="official"`` is the official REGNN's loss and nothing else: ``dist`` is, per window, the
minimum over the appropriate reactions of MSE(centre, mapped reaction), zeroed where it is at or
below ``tau`` (:class:`TauGate`: a third of the previous epoch's mean ``dist``; no gate in the
first epoch), averaged over the windows; plus ``mid`` (weight ``cfg.mid``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class LossConfig:
    kind: str = "project"  # project | official (min-MSE with the adaptive tau gate + mid)
    recon: float = 1.0
    dist: float = 1.0
    threshold: float = 0.01  # per-element MSE radius of the appropriate-reaction ball
    mid: float = 0.1
    logdet: float = 0.0
    smooth: float = 0.1


def masked_min(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Row-wise minimum of ``values`` ``(B, K)`` over the entries where ``mask`` is set."""
    return values.masked_fill(~mask, float("inf")).amin(1)


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` ``(B, K)`` over the set entries."""
    return (values * mask).sum() / mask.sum().clamp(min=1)


class TauGate(nn.Module):
    """The official loss's adaptive threshold: ``tau`` is a third of the previous epoch's mean
    ``dist`` (0, no gate, before the first epoch ends). Buffers, so checkpoints carry it."""

    def __init__(self):
        super().__init__()
        self.register_buffer("tau", torch.zeros(1))
        self.register_buffer("total", torch.zeros(1, dtype=torch.float64))
        self.register_buffer("count", torch.zeros(1, dtype=torch.long))

    @torch.no_grad()
    def update(self, dist: torch.Tensor, steps_per_epoch: int) -> None:
        """Add one training step's ``dist``; after ``steps_per_epoch`` of them, set ``tau``."""
        self.total += dist.detach().double()
        self.count += 1
        if int(self.count) >= steps_per_epoch:
            self.tau.copy_(self.total / self.count / 3)
            self.total.zero_()
            self.count.zero_()


def regnn_losses(out: dict[str, torch.Tensor], reactions: torch.Tensor, mask: torch.Tensor,
                 cfg: LossConfig, pattern: str, tau: torch.Tensor | None = None
                 ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Weighted total loss and its parts (unweighted) for one batch.

    ``out`` is the model's forward output, ``reactions`` ``(B, K, T, 25)``, ``mask`` ``(B, K)``;
    ``tau`` the gate of ``kind="official"`` (None: no gate).
    """
    mask = mask.bool()
    parts: dict[str, torch.Tensor] = {}
    if "latent" in out:
        latent = out["latent"].float()
        mse = (latent - out["centre"].float()[:, None]).pow(2).flatten(2).mean(-1)  # (B, K)
        nearest = masked_min(mse, mask)
        if cfg.kind == "official" and tau is not None:
            nearest = torch.where(nearest > tau, nearest, torch.zeros_like(nearest))
        parts["dist"] = nearest.mean()
        if pattern == "all":
            if cfg.kind != "official":
                parts["dist"] = parts["dist"] + masked_mean(torch.relu(mse - cfg.threshold), mask)
            m = mask[:, :, None, None].to(latent.dtype)
            mean = (latent * m).sum(1, keepdim=True) / m.sum(1, keepdim=True)
            parts["mid"] = masked_mean((latent - mean).pow(2).flatten(2).mean(-1), mask)
        if "logdet" in out and cfg.kind != "official":
            parts["logdet"] = -masked_mean(out["logdet"].float(), mask) / latent[0, 0].numel()
    if "decoded" in out and cfg.kind != "official":
        decoded = out["decoded"].float()
        err = (decoded[:, None] - reactions.float()).pow(2).flatten(2).mean(-1)
        parts["recon"] = masked_min(err, mask).mean()
        parts["smooth"] = (decoded[:, 1:] - decoded[:, :-1]).abs().mean()
    total = sum(getattr(cfg, name) * value for name, value in parts.items())
    return total, parts
