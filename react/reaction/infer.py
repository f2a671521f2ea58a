"""Reactions to one raw speaker clip of any length: decode, features, ``samples`` reactions, pictures.

    react infer --deploy DIR --video speaker.mp4 --audio speaker.wav --out-dir OUT
    react infer --checkpoint RUN --features configs/features_tiny.yaml \\
        --video ... --audio ... --out-dir OUT
        [--samples 10] [--seed 0] [--online [--chunk 1]] [--no-video] [--no-render] [--threads N]
        [--speaker-attributes CSV]

``--deploy`` runs the ONNX networks of a deploy folder (:mod:`react.reaction.deploy.export`) and needs no
torch; ``--checkpoint`` runs the PyTorch checkpoint and the backbones of a feature config. OUT
receives ``result-<k>.pth`` (float32 ``(frames, 25)``; a standard REACT clip of 751 frames at 25
fps gives the 750 rows its facial attributes have, which the evaluation expects) and
``result-<k>.csv`` per sample, ``info.json`` and, unless ``--no-render``, the plots and
face-sketch video of :mod:`react.reaction.viz` under ``OUT/viz``. ``--online`` generates causally
(:mod:`react.reaction.online`): each frame's reaction uses only that frame and earlier ones. A clip of
another frame rate than the deployment's (30 fps into a 25 fps deployment) is resampled to the
deployment's rate. A model that reads the speaker's facial attributes (``inputs`` with
``speaker``) needs them as ``--speaker-attributes`` (an Emotion CSV, a row per frame; one missing
last row repeats the last). Errors print one line and exit with status 2.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

from features.media import video_fps
from react.reaction.data.react_layout import FPS, NUM_FRAMES, NUM_VIDEO_FRAMES, read_emotion
from react.reaction.deploy.runtime import (
    INPUT_ERRORS,
    Backend,
    DeployBackend,
    DeployError,
    attribute_rows,
    check_raw_clip_inputs,
    clip_features,
    generate,
    write_results,
)
from react.utils.cli import add_out_dir
from react.utils.io import save_json


def load_backend(
    deploy: str | None, checkpoint: str | None, features: str | None, threads: int = 0, device: str = "cpu"
) -> Backend:
    """The deploy folder's networks (no torch), or a checkpoint's with the feature config's backbones."""
    if deploy:
        return DeployBackend(deploy, threads)
    if not features:
        raise DeployError("--checkpoint needs --features: the feature-extraction config of its training data")
    from features.config import FeatureConfig
    from react.config import load_config
    from react.reaction.deploy.networks import TorchBackend, build_networks

    cfg = load_config(features, ["split=all", "type=all", "data.root=."], schema=FeatureConfig)
    return TorchBackend(build_networks(checkpoint, cfg), device)


def clear_outputs(out: Path) -> None:
    """Remove what an earlier run wrote into ``out`` (results, ``info.json``, ``viz/``), so that a
    reused folder holds only this run's outputs; other files are left alone."""
    for old in [*out.glob("result-*.pth"), *out.glob("result-*.csv"), out / "info.json"]:
        old.unlink(missing_ok=True)
    shutil.rmtree(out / "viz", ignore_errors=True)


def infer_clip(
    backend: Backend,
    video: str | os.PathLike,
    audio: str | os.PathLike,
    out: str | os.PathLike,
    samples: int | None = None,
    seed: int = 0,
    online: bool = False,
    chunk: int = 1,
    render: bool = True,
    face_video: bool = True,
    speaker_attributes: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Write the reactions (and pictures) of one clip under ``out``; returns what ``info.json`` holds.
    ``speaker_attributes``: an Emotion CSV of the speaker's facial attributes, for a model that reads
    them (:func:`~react.reaction.deploy.runtime.attribute_rows` aligns it to the frames)."""
    check_raw_clip_inputs(backend.info, speaker_attributes is not None)
    speaker = None
    if speaker_attributes is not None:
        rows = read_emotion(speaker_attributes, None)
        speaker = partial(attribute_rows, rows, path=speaker_attributes)
    samples = samples or backend.info["samples"]
    out = Path(out)
    started = time.perf_counter()
    if online:
        from react.reaction.online import stream_clip

        reactions, timing = stream_clip(backend, video, audio, samples, seed, chunk, speaker)
    else:
        feats = clip_features(backend, video, audio)
        t_feat = time.perf_counter() - started
        own = None if speaker is None else speaker(0, len(feats[0]))
        reactions = generate(backend, *feats, samples, seed, speaker=own)
        timing = {"features_s": t_feat, "generate_s": time.perf_counter() - started - t_feat}
    video_frames = int(reactions.shape[1])
    if backend.info["fps"] == FPS and video_frames == NUM_VIDEO_FRAMES:
        reactions = reactions[:, :NUM_FRAMES]  # a REACT clip: the 750 rows its attributes (and scores) have
    clear_outputs(out)
    written = write_results(reactions, out)
    info = {
        "video": str(video),
        "audio": str(audio),
        "frames": int(reactions.shape[1]),
        "video_frames": video_frames,
        "fps": backend.info["fps"],  # the reactions' rate: the deployment's
        "video_fps": video_fps(Path(video)),  # the clip's, resampled to ``fps`` when it differs
        "samples": samples,
        "seed": seed,
        **({} if speaker_attributes is None else {"speaker_attributes": str(speaker_attributes)}),
        "mode": f"online (chunk {chunk})" if online else "offline",
        "backend": type(backend).__name__,
        **timing,
        "results": [p.name for p in written.pth],  # raw model output: what the evaluation scores
        "constrained": [p.name for p in written.constrained],  # AUs clipped, expressions renormalised
    }
    if render:
        from react.reaction.viz import render_clip

        pictures = render_clip(reactions, out / "viz", speaker_video=video, video=face_video)
        info["pictures"] = [str(p.relative_to(out)) for p in pictures]
    save_json(info, out / "info.json")
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="react infer", description=__doc__.split("\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--deploy", help="deploy folder (ONNX, no torch needed)")
    source.add_argument("--checkpoint", help="a generator's run dir, checkpoint dir or state.pt (PyTorch)")
    parser.add_argument("--features", help="feature-extraction config (with --checkpoint)")
    parser.add_argument("--video", required=True, help="speaker video: mp4 (any length) or png folder")
    parser.add_argument("--audio", required=True, help="speaker audio: wav or any soundfile format")
    add_out_dir(parser, required=True, dest="out", help="output folder")
    parser.add_argument("--speaker-attributes", help="the speaker's facial attributes (Emotion CSV: a "
                        "header, 25 columns per frame), for a model that reads them")
    parser.add_argument("--samples", type=int, help="reactions per clip (default: the deployment's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--online", action="store_true", help="causal streaming generation")
    parser.add_argument("--chunk", type=int, default=1, help="online: frames per step")
    parser.add_argument("--no-render", action="store_true", help="no plots, no video")
    parser.add_argument("--no-video", action="store_true", help="plots only")
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime threads (0 = its default)")
    args = parser.parse_args(argv)
    from react.errors import user_message
    from react.utils.io import output_folder

    try:
        for flag, value in (("--samples", args.samples), ("--chunk", args.chunk)):
            if value is not None and value < 1:
                raise ValueError(f"{flag} {value}: must be at least 1")
        output_folder(args.out, flag="--out-dir")
        backend = load_backend(args.deploy, args.checkpoint, args.features, args.threads)
        info = infer_clip(
            backend,
            args.video,
            args.audio,
            args.out,
            args.samples,
            args.seed,
            args.online,
            args.chunk,
            not args.no_render,
            not args.no_video,
            args.speaker_attributes,
        )
    except INPUT_ERRORS as err:
        print(f"error: {user_message(err)}", file=sys.stderr)
        return 2
    print(
        f"{info['samples']} reactions x {info['frames']} frames at {info['fps']} fps -> {args.out} "
        f"({', '.join(f'{k} {v:.2f}' for k, v in info.items() if k.endswith('_s'))})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
