"""REGNN training losses over a window's set of appropriate real reactions.

With ``latent`` the reactions mapped forward by the motor processor, ``centre`` the cognitive
output and ``decoded`` the reaction at the centre (motor inverse):

- ``recon``: MSE between ``decoded`` and the nearest appropriate reaction (``pair``: the real one);
- ``dist``: distribution loss: the nearest mapped reaction's MSE to the centre, plus (``all``) a
  hinge ``relu(mse_j - threshold)`` pulling every appropriate reaction into a ball around it;
- ``mid``: mid-level loss (``all``): spread of one window's mapped reactions around their mean;
- ``logdet``: ``-log|det J|`` per dimension (keeps the motor map from collapsing volume);
- ``smooth``: mean absolute frame-to-frame change of ``decoded``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class LossConfig:
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


def regnn_losses(out: dict[str, torch.Tensor], reactions: torch.Tensor, mask: torch.Tensor,
                 cfg: LossConfig, pattern: str) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Weighted total loss and its parts (unweighted) for one batch.

    ``out`` is the model's forward output, ``reactions`` ``(B, K, T, 25)``, ``mask`` ``(B, K)``.
    """
    mask = mask.bool()
    parts: dict[str, torch.Tensor] = {}
    if "latent" in out:
        latent = out["latent"].float()
        mse = (latent - out["centre"].float()[:, None]).pow(2).flatten(2).mean(-1)  # (B, K)
        parts["dist"] = masked_min(mse, mask).mean()
        if pattern == "all":
            parts["dist"] = parts["dist"] + masked_mean(torch.relu(mse - cfg.threshold), mask)
            m = mask[:, :, None, None].to(latent.dtype)
            mean = (latent * m).sum(1, keepdim=True) / m.sum(1, keepdim=True)
            parts["mid"] = masked_mean((latent - mean).pow(2).flatten(2).mean(-1), mask)
        if "logdet" in out:
            parts["logdet"] = -masked_mean(out["logdet"].float(), mask) / latent[0, 0].numel()
    if "decoded" in out:
        decoded = out["decoded"].float()
        err = (decoded[:, None] - reactions.float()).pow(2).flatten(2).mean(-1)
        parts["recon"] = masked_min(err, mask).mean()
        parts["smooth"] = (decoded[:, 1:] - decoded[:, :-1]).abs().mean()
    total = sum(getattr(cfg, name) * value for name, value in parts.items())
    return total, parts
