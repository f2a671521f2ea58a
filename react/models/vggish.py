"""VGGish (Hershey et al., 2017): a VGG-style CNN turning 0.96 s log-mel examples into 128-d embeddings.

Input ``(B, 1, 96, 64)`` (96 frames of 10 ms x 64 mel bands, :mod:`features.vggish`), four conv
stages (3x3 convolutions + ReLU, 2x2 max-pooling after each) down to ``512 x 6 x 4``, flattened in
(height, width, channel) order as the TensorFlow original, then three fully connected layers with
ReLU to 128. Module names follow the common PyTorch port (harritaylor/torchvggish: ``features.N``,
``embeddings.N``, ``pproc.*``), so its state dict loads as is (:func:`react.pretrained.load_vggish_weights`).
``postprocess`` adds the AudioSet release's PCA whitening and 8-bit quantisation (:class:`Postprocessor`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

CHANNELS = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M")
TINY = {"channels": (8, "M", 8, "M", 16, 16, "M", 16, 16, "M"), "hidden": 32}  # tests, random_init demos
EXAMPLE_FRAMES, MEL_BANDS, EMBEDDING = 96, 64, 128
QUANTIZE_MIN, QUANTIZE_MAX = -2.0, 2.0  # vggish_params.QUANTIZE_MIN_VAL / QUANTIZE_MAX_VAL


class Postprocessor(nn.Module):
    """The post-processing of the released AudioSet embeddings, back to floats.

    PCA with whitening ``M (e - mean)``, clipped to [-2, 2] and quantised to 8 bits as TF's
    ``vggish_postprocess.py`` does (``uint8((x + 2) * 255 / 4)``, truncating), then read back as
    YouTube-8M reads the released bytes (``Dequantize``: ``q * 4 / 255 + 4 / 512 - 2``). The
    buffers ``pca_matrix`` ``(128, 128)`` and ``pca_means`` ``(128, 1)`` come from the weights file.
    """

    def __init__(self, dim: int = EMBEDDING):
        super().__init__()
        self.register_buffer("pca_matrix", torch.zeros(dim, dim))
        self.register_buffer("pca_means", torch.zeros(dim, 1))

    def forward(self, embeddings: Tensor) -> Tensor:
        whitened = (embeddings - self.pca_means.T) @ self.pca_matrix.T
        span = QUANTIZE_MAX - QUANTIZE_MIN
        scaled = (whitened.clamp(QUANTIZE_MIN, QUANTIZE_MAX) - QUANTIZE_MIN) * (255 / span)
        return scaled.to(torch.uint8).float() * (span / 255) + (span / 512 + QUANTIZE_MIN)


class VGGish(nn.Module):
    """Log-mel examples ``(B, 1, 96, 64)`` -> embeddings ``(B, 128)`` (``postprocess``: PCA + 8 bits)."""

    def __init__(self, channels: tuple = CHANNELS, hidden: int = 4096, out_dim: int = EMBEDDING,
                 postprocess: bool = False):
        super().__init__()
        layers: list[nn.Module] = []
        width = 1
        for c in channels:
            if c == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(width, int(c), 3, padding=1), nn.ReLU(inplace=True)]
                width = int(c)
        self.features = nn.Sequential(*layers)
        pools = sum(c == "M" for c in channels)
        flat = width * (EXAMPLE_FRAMES >> pools) * (MEL_BANDS >> pools)
        self.embeddings = nn.Sequential(nn.Linear(flat, hidden), nn.ReLU(True), nn.Linear(hidden, hidden),
                                        nn.ReLU(True), nn.Linear(hidden, out_dim), nn.ReLU(True))
        self.pproc = Postprocessor(out_dim) if postprocess else None

    def forward(self, examples: Tensor) -> Tensor:
        if examples.shape[1:] != (1, EXAMPLE_FRAMES, MEL_BANDS):
            raise ValueError(f"expected log-mel examples (B, 1, {EXAMPLE_FRAMES}, {MEL_BANDS}), "
                             f"got {tuple(examples.shape)}")
        x = self.features(examples)  # (B, C, H, W)
        x = self.embeddings(x.permute(0, 2, 3, 1).flatten(1))  # TF order: (H, W, C)
        return x if self.pproc is None else self.pproc(x)
