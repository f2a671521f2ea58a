"""Online (causal) generation speed: per-frame latency of the whole causal pipeline (video backbone,
audio encoder over the last second, generator on the window ending with the frame) for the tiny
config and at paper scale, and ONNX vs PyTorch speed of offline inference on a 30 s clip.

    python benchmarks/bench_online.py [--frames 100] [--threads 1] [--skip-paper] [--iters 30]

Random-init models (speed does not depend on the weights); the goal is under 40 ms per frame
(25 fps) with the tiny config. Figures depend on what else the machine runs: run it alone.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from features.config import FeatureConfig  # noqa: E402
from react.config import load_config  # noqa: E402
from react.models.ssl_audio import BASE_CONFIG  # noqa: E402
from react.reaction.deploy.export import export_deploy  # noqa: E402
from react.reaction.deploy.networks import TorchBackend, build_networks  # noqa: E402
from react.reaction.deploy.runtime import DeployBackend, generate  # noqa: E402
from react.reaction.models.regnn import REGNN  # noqa: E402
from react.reaction.online import CausalFeatures, CausalReactor  # noqa: E402
from react.tasks import load_task_config  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SCALES = {  # name -> (REGNN config + overrides, feature config + overrides)
    "tiny": (("configs/regnn_tiny.yaml", []), ("configs/features_tiny.yaml", [])),
    "paper": (
        ("configs/regnn.yaml", []),  # Swin-T at 224 px, Wav2Vec2-base: the defaults
        (None, ["video.random_init=true", "audio.random_init=true",
                *[f"audio.arch.{k}={json.dumps(v)}" for k, v in BASE_CONFIG.items()]]),
    ),
}


def checkpoint(folder: Path, regnn: tuple[str, list[str]], dims: tuple[int, int], iters: int) -> Path:
    cfg = load_task_config(
        ROOT / regnn[0],
        [
            *regnn[1],
            f"model.perceptual.video_dim={dims[0]}",
            f"model.perceptual.audio_dim={dims[1]}",
            f"model.motor.inverse_iters={iters}",
            "model.motor.inverse_tol=0",
        ],
    )
    torch.manual_seed(0)
    model = REGNN(cfg.model, cfg.data.num_frames)
    from omegaconf import OmegaConf

    torch.save({"model": model.state_dict(), "config": OmegaConf.to_container(cfg)}, folder / "state.pt")
    return folder / "state.pt"


def per_frame_ms(backend, frames: int, chunk: int) -> float:
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (256, 256, 3), dtype=np.uint8) for _ in range(frames)]
    wave = (0.1 * rng.standard_normal(frames * 640 + 640)).astype(np.float32)
    feats, reactor = CausalFeatures(backend), CausalReactor(backend)
    reactor.push(*feats.push(images[:chunk], wave[: chunk * 640]))  # warm-up
    started = time.perf_counter()
    for i in range(chunk, frames, chunk):
        reactor.push(*feats.push(images[i : i + chunk], wave[i * 640 : (i + chunk) * 640]))
    return 1000 * (time.perf_counter() - started) / (frames - chunk)


def offline_s(backend, frames: int = 751) -> float:
    rng = np.random.default_rng(0)
    d = backend.info["features"]
    video = rng.standard_normal((frames, d["video_dim"])).astype(np.float32)
    audio = rng.standard_normal((frames, d["audio_dim"])).astype(np.float32)
    started = time.perf_counter()
    generate(backend, video, audio, backend.info["samples"], 0)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1, help="torch and onnxruntime threads")
    parser.add_argument("--iters", type=int, default=30, help="unrolled inverse iterations per motor layer")
    parser.add_argument("--skip-paper", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for scale, (regnn, feats) in SCALES.items():
        if scale == "paper" and args.skip_paper:
            continue
        fcfg = load_config(
            feats[0] and ROOT / feats[0],
            ["split=all", "type=all", "data.root=.", *feats[1]],
            schema=FeatureConfig,
        )
        with tempfile.TemporaryDirectory() as tmp:
            dims = (64, 32) if scale == "tiny" else (768, 768)
            nets = build_networks(checkpoint(Path(tmp), regnn, dims, args.iters), fcfg)
            export_deploy(nets, Path(tmp) / "deploy", atol=1e-2)
            backends = {
                "onnx": DeployBackend(Path(tmp) / "deploy", args.threads),
                "pytorch": TorchBackend(nets),
            }
            for name, backend in backends.items():
                frame = per_frame_ms(backend, args.frames, 1)
                chunk = per_frame_ms(backend, args.frames, 5)
                print(
                    f"{scale:5s} {name:7s}: online {frame:7.1f} ms/frame (frame by frame), "
                    f"{chunk:7.1f} ms/frame (chunks of 5); offline 10 reactions to 751 frames "
                    f"of features {offline_s(backend):6.2f} s",
                    flush=True,
                )


if __name__ == "__main__":
    main()
