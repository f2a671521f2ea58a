"""Augmentations of window batches ``(batch, frames, channels)``, vectorised in torch (any device).

The reference tools' set, each applied to a window with its own ``probability``:
``gaussian_noise`` (add N(mean, std)), ``scale`` (multiply each channel by a factor in
[1/max_scale, max_scale]), ``sign_flip`` (negate the window), ``channels_flip`` (shuffle the
channels), ``zero_masking`` (zero a span of up to ``max_ratio`` of the frames), ``permutation``
(cut into ``max_segments`` pieces, reorder them), ``time_shifting`` (roll by up to ``max_shift`` of
the frames) and ``time_warping`` (resample along a smooth random time warp, ``sigma`` at ``knots``).
Random numbers come from the ``generator`` passed in (the global RNG when None). On the CPU the
augmentations run on one thread: their many small tensor operations lose more to waking the other
threads than they gain (on a busy machine a batch took 30 times longer on two threads than on one).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields

import torch


@dataclass
class GaussianNoise:
    probability: float = 0.0
    mean: float = 0.0
    std: float = 0.2


@dataclass
class Scale:
    probability: float = 0.0
    max_scale: float = 1.3


@dataclass
class SignFlip:
    probability: float = 0.0


@dataclass
class ChannelsFlip:
    probability: float = 0.0


@dataclass
class ZeroMasking:
    probability: float = 0.0
    max_ratio: float = 0.2


@dataclass
class Permutation:
    probability: float = 0.0
    max_segments: int = 4


@dataclass
class TimeShifting:
    probability: float = 0.0
    max_shift: float = 0.2


@dataclass
class TimeWarping:
    probability: float = 0.0
    sigma: float = 0.2
    knots: int = 4


@dataclass
class TSAugmentConfig:
    """One block per augmentation, applied in this order; probability 0 switches one off."""

    gaussian_noise: GaussianNoise = field(default_factory=GaussianNoise)
    scale: Scale = field(default_factory=Scale)
    sign_flip: SignFlip = field(default_factory=SignFlip)
    channels_flip: ChannelsFlip = field(default_factory=ChannelsFlip)
    zero_masking: ZeroMasking = field(default_factory=ZeroMasking)
    permutation: Permutation = field(default_factory=Permutation)
    time_shifting: TimeShifting = field(default_factory=TimeShifting)
    time_warping: TimeWarping = field(default_factory=TimeWarping)


AUGMENTATIONS = tuple(f.name for f in fields(TSAugmentConfig))


def _rand(shape: tuple[int, ...], x: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
    return torch.rand(shape, generator=gen, device=x.device, dtype=torch.float32)


def _gather_time(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``x[b, index[b, t], c]``."""
    return torch.gather(x, 1, index[:, :, None].expand(-1, -1, x.shape[2]))


def gaussian_noise(x: torch.Tensor, p: GaussianNoise, gen: torch.Generator | None) -> torch.Tensor:
    noise = torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
    return x + p.mean + p.std * noise


def scale(x: torch.Tensor, p: Scale, gen: torch.Generator | None) -> torch.Tensor:
    log_max = torch.log(torch.tensor(float(p.max_scale)))
    factor = torch.exp((2 * _rand((len(x), 1, x.shape[2]), x, gen) - 1) * log_max)
    return x * factor.to(x.dtype)


def sign_flip(x: torch.Tensor, p: SignFlip, gen: torch.Generator | None) -> torch.Tensor:
    return -x


def channels_flip(x: torch.Tensor, p: ChannelsFlip, gen: torch.Generator | None) -> torch.Tensor:
    order = _rand((len(x), x.shape[2]), x, gen).argsort(1)
    return torch.gather(x, 2, order[:, None, :].expand(-1, x.shape[1], -1))


def zero_masking(x: torch.Tensor, p: ZeroMasking, gen: torch.Generator | None) -> torch.Tensor:
    n, length = x.shape[:2]
    span = (_rand((n, 1), x, gen) * p.max_ratio * length).long()
    start = (_rand((n, 1), x, gen) * (length - span + 1)).long()
    t = torch.arange(length, device=x.device)[None]
    return x.masked_fill(((t >= start) & (t < start + span))[:, :, None], 0.0)


def permutation(x: torch.Tensor, p: Permutation, gen: torch.Generator | None) -> torch.Tensor:
    n, length = x.shape[:2]
    pieces = max(1, min(p.max_segments, length))
    cuts = (_rand((n, pieces - 1), x, gen) * (length - 1)).long().add(1).sort(1).values
    t = torch.arange(length, device=x.device)
    segment = torch.searchsorted(cuts, t[None].expand(n, -1).contiguous(), right=True)
    rank = _rand((n, pieces), x, gen).argsort(1).argsort(1)  # new position of each piece
    key = torch.gather(rank, 1, segment) * length + t[None]
    return _gather_time(x, key.argsort(1))


def time_shifting(x: torch.Tensor, p: TimeShifting, gen: torch.Generator | None) -> torch.Tensor:
    n, length = x.shape[:2]
    shift = ((2 * _rand((n, 1), x, gen) - 1) * p.max_shift * length).round().long()
    t = torch.arange(length, device=x.device)[None]
    return _gather_time(x, (t - shift) % length)


def time_warping(x: torch.Tensor, p: TimeWarping, gen: torch.Generator | None) -> torch.Tensor:
    n, length = x.shape[:2]
    speed = 1 + p.sigma * torch.randn((n, 1, p.knots + 2), generator=gen, device=x.device)
    speed = torch.nn.functional.interpolate(speed, size=length, mode="linear", align_corners=True)[:, 0]
    pos = torch.cumsum(speed.clamp(min=0.1), 1)
    pos = (pos - pos[:, :1]) / (pos[:, -1:] - pos[:, :1]) * (length - 1)  # source frame of each frame
    lo = pos.floor().long().clamp(0, length - 2)
    w = (pos - lo)[:, :, None].to(x.dtype)
    return _gather_time(x, lo) * (1 - w) + _gather_time(x, lo + 1) * w


FUNCTIONS = {"gaussian_noise": gaussian_noise, "scale": scale, "sign_flip": sign_flip,
             "channels_flip": channels_flip, "zero_masking": zero_masking, "permutation": permutation,
             "time_shifting": time_shifting, "time_warping": time_warping}


class TSAugment:
    """The configured augmentations; each window draws whether each one applies."""

    def __init__(self, cfg: TSAugmentConfig):
        for name in AUGMENTATIONS:
            if not 0 <= getattr(cfg, name).probability <= 1:
                raise ValueError(f"augment.{name}.probability must be in [0, 1], "
                                 f"got {getattr(cfg, name).probability}")
        self.steps = [(FUNCTIONS[name], getattr(cfg, name)) for name in AUGMENTATIONS
                      if getattr(cfg, name).probability > 0]

    @property
    def enabled(self) -> bool:
        return bool(self.steps)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None,
                 views: int = 1) -> torch.Tensor:
        """``views`` augmented copies of each window, stacked: ``(views * batch, frames, channels)``."""
        with one_cpu_thread(x):
            x = x.repeat(views, 1, 1) if views > 1 else x
            for fn, params in self.steps:
                chosen = _rand((len(x), 1, 1), x, generator) < params.probability
                x = torch.where(chosen, fn(x, params, generator), x)
        return x


@contextmanager
def one_cpu_thread(x: torch.Tensor) -> Iterator[None]:
    """Run the block on one intra-op thread when ``x`` is on the CPU (small operations)."""
    threads = torch.get_num_threads()
    if x.device.type != "cpu" or threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
