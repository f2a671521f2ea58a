"""Small synthetic REACT datasets with stand-in features for the REGNN tests.

The synthetic generator (``scripts/make_synthetic_react.py``) writes Emotion CSVs whose speaker
attributes drive the listener's. Decoding its videos is too slow for unit tests, so features come
from :func:`react.data.proxy_features.write_proxy_features` (a read-out of each clip's own Emotion).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from react.data.proxy_features import write_proxy_features

ROOT = Path(__file__).resolve().parents[2]
VIDEO_DIM, AUDIO_DIM = 12, 6


def synthetic_react(out: Path, pairs: int, eval_pairs: int, seed: int = 0) -> Path:
    """Emotion CSVs, split lists and matrices (no media) of the synthetic generator."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from make_synthetic_react import generate

    return generate(out, pairs, seed=seed, media=False, eval_pairs=eval_pairs)


def write_features(root: Path) -> None:
    write_proxy_features(root, VIDEO_DIM, AUDIO_DIM)


def tiny_overrides(root: Path, out_dir: Path) -> list[str]:
    """``key=value`` overrides that point ``configs/regnn_tiny.yaml`` at a test dataset."""
    return [f"data.root={root}", f"out_dir={out_dir}", f"model.perceptual.video_dim={VIDEO_DIM}",
            f"model.perceptual.audio_dim={AUDIO_DIM}"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread in a module that imports this fixture (bit-exact reruns), restored after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def seeded_one_thread():
    """Each test of a module that imports this fixture: one torch thread and torch's seed 0."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)


def synthetic_with_features(tmp_path_factory, pairs: int, eval_pairs: int, seed: int) -> Path:
    """A synthetic REACT set (``synthetic_react``) in a new temporary folder, with its stand-in
    feature files written: the data of the tests that train a generator."""
    root = synthetic_react(tmp_path_factory.mktemp("syn"), pairs=pairs, eval_pairs=eval_pairs, seed=seed)
    write_features(root)
    return root
