"""Extract per-frame video (Swin) or audio (SSL / log-mel / eGeMAPS) features for a REACT split.

    react extract --split train --type video --data-dir D --out-dir S \\
        [--backbone NAME] [--weights PATH] [--batch-size B] [--device cpu|cuda] [--workers N] \\
        [--config configs/features_tiny.yaml] [key=value ...]

Reads the clips of ``D/<split>.csv`` (speakers and listeners) and writes float32 ``frames x dim``
tensors to ``S/<split>/{Video,Audio}_features/<clip>.pth`` with a JSON sidecar beside each. A MARS
data set (REACT 2025/2026, detected, or ``layout=mars``) is read from
``D/<split>/{video-face-crop,audio}/<role>/session<K>/<stem>.*``: every clip of both roles, every
video frame at 30 fps (clips of any length), written to ``S/<split>/{Video,Audio}_features/<role>/
session<K>/<stem>.pth``.
``--split all`` / ``--type all`` run every split / both types in one process. ``--backbone``,
``--weights`` and ``--batch-size`` set ``<type>.backbone`` etc. of the chosen type; every other
option is a config key (see ``features/config.py``). Exit status 1 when any clip failed.

Under ``accelerate launch --num_processes N -m features.extract ...`` (one GPU per process, or
CPU processes) each process extracts a contiguous share of every split's clips and writes their
files itself; the main process gathers the reports and prints the summary (docs/distributed.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from omegaconf import DictConfig

from features.config import TYPES, FeatureConfig, validate
from features.runner import Extractor, Job, Report, run_jobs
from react.config import ConfigError, load_config
from react.errors import LayoutError
from react.reaction.data import layouts
from react.reaction.data import mars_layout as M
from react.reaction.data.react_layout import SPLITS, audio_path, feature_path, read_split, video_path
from react.utils import distributed as dist
from react.utils.cli import add_data_dir, add_out_dir, add_split, flag_overrides
from react.utils.logging import get_logger, setup_logging

log = get_logger(__name__)


def parse_args(argv: list[str] | None = None) -> DictConfig:
    """Command line -> validated config (YAML <- flags <- key=value overrides)."""
    parser = argparse.ArgumentParser(prog="react extract",
                                     description=__doc__.split("\n")[0])
    add_split(parser, default=None, all_splits=True, help="a split, or all of them")
    parser.add_argument("--type", choices=TYPES + ("all",))
    add_data_dir(parser)
    add_out_dir(parser, help="root of the feature layout (config key out_dir; default: --data-dir)")
    parser.add_argument("--backbone", help="video: timm model name; audio: wav2vec2 | hubert | wavlm")
    parser.add_argument("--weights", help="local checkpoint file or HF-format model directory")
    parser.add_argument("--batch-size", type=int, help="video: frames per forward; audio: clips per forward")
    parser.add_argument("--device", choices=("cpu", "cuda"))
    parser.add_argument("--workers", type=int, help="decoding worker processes (0 = in-process)")
    parser.add_argument("--config", help="YAML config (may name a base: it extends)")
    parser.add_argument("overrides", nargs="*", help="key=value config overrides, e.g. audio.kind=logmel")
    args = parser.parse_args(argv)
    typed = ("backbone", "weights", "batch_size")  # keys of the --type's own section
    if any(getattr(args, key) is not None for key in typed) and args.type not in TYPES:
        raise ConfigError("--backbone/--weights/--batch-size need --type video or --type audio; with "
                          "--type all set video.weights=... audio.weights=... instead")
    flags = {"data_dir": "data.root", **{k: k for k in ("split", "type", "out_dir", "device", "workers")},
             **{k: f"{args.type}.{k}" for k in typed}}
    cfg = load_config(args.config, flag_overrides(args, flags) + list(args.overrides), schema=FeatureConfig)
    validate(cfg)
    return cfg


MARS_MEDIA = {"video": "video-face-crop", "audio": "audio"}  # the MARS modality folder of each type


def build_jobs(cfg: DictConfig, split: str, kind: str) -> list[Job]:
    """One job per distinct clip of the split: the official 2N order (REACT 2023/2024), or every
    speaker then every listener clip with media of this type (MARS)."""
    root = Path(cfg.data.root)
    if cfg.layout == "mars":
        folder, modality = root / split / MARS_MEDIA[kind], MARS_MEDIA[kind]
        clips = [M.clip_id(role, c) for role in M.ROLES for c in M.list_clips(root, split, role, modality)]
        if not clips:
            raise LayoutError(f"{folder}: no {kind} clips found (expected <role>/session<K>/<stem>"
                              f"{M.MODALITIES[MARS_MEDIA[kind]]})")
    else:
        clips = list(dict.fromkeys(read_split(root, split).clips))
        folder = root / split / ("Video_files" if kind == "video" else "Audio_files")
        if not folder.is_dir():  # one line instead of one per clip
            raise LayoutError(f"{folder}: folder not found; split '{split}' lists {len(clips)} clips whose "
                              f"{kind} files belong there")
    jobs = []
    for clip in clips:
        if cfg.layout == "mars":
            video = M.file_path(root, split, MARS_MEDIA["video"], clip)
            source = M.file_path(root, split, MARS_MEDIA[kind], clip)
        else:
            video = video_path(root, split, clip)
            source = video if kind == "video" else audio_path(root, split, clip)
        target = feature_path(cfg.out_dir or root, split, kind, clip)
        jobs.append(Job(clip, source, target, video, cfg.frames, root))
    return jobs


def for_layout(cfg: DictConfig) -> DictConfig:
    """``cfg`` with ``layout`` resolved; MARS clips keep every video frame (``frames=0``) at 30 fps."""
    cfg = cfg.copy()
    cfg.layout = layouts.resolve(cfg.data.root, cfg.layout)
    if cfg.layout == "mars":
        cfg.frames, cfg.fps = 0, M.FPS
    return cfg


def build_extractor(cfg: DictConfig, kind: str) -> Extractor:
    """The video or audio extractor; its model is loaded when a clip needs it."""
    if kind == "video":
        from features.video import VideoExtractor

        return VideoExtractor(cfg)
    from features.audio import AudioExtractor

    return AudioExtractor(cfg)


def merge_reports(reports: list[Report]) -> Report:
    """One report of the processes' reports (clips in process order; the slowest process's time)."""
    merged = Report(seconds=max(r.seconds for r in reports))
    for r in reports:
        merged.done += r.done
        merged.skipped += r.skipped
        merged.failed.update(r.failed)
    return merged


def extract(cfg: DictConfig) -> dict[str, Report]:
    """Run every requested (split, type); returns a report per ``"<split> <type>"``.

    Both extractors are set up (weights checked and hashed) before any clip is read, so that a
    missing audio checkpoint fails at once rather than after the whole video pass. Launched as
    several processes, each extracts its share of the clips and every process returns the
    merged reports.
    """
    cfg = for_layout(cfg)
    acc = dist.make_accelerator(cfg.device) if dist.launched() else None
    threads = torch.get_num_threads()
    wanted = cfg.threads or threads
    if acc:
        cfg.device = str(acc.device)  # this process's GPU, or the CPU
        if not cfg.threads and acc.device.type == "cpu":
            wanted = dist.cpu_workers()
    kinds = TYPES if cfg.type == "all" else (cfg.type,)
    extractors = {kind: build_extractor(cfg, kind) for kind in kinds}
    reports = {}
    torch.set_num_threads(wanted)
    try:
        for kind, extractor in extractors.items():
            for split in SPLITS if cfg.split == "all" else (cfg.split,):
                name, jobs = f"{split} {kind}", build_jobs(cfg, split, kind)
                if acc:
                    log.info("%s: %s", name, dist.share_summary(len(jobs), acc.num_processes))
                    jobs = [jobs[i] for i in dist.share(len(jobs), acc.process_index, acc.num_processes)]
                report = run_jobs(jobs, extractor, cfg.workers, cfg.device, name)
                reports[name] = merge_reports(dist.gather(report, acc)) if acc else report
    finally:
        torch.set_num_threads(threads)
    dist.shutdown()
    return reports


def main(argv: list[str] | None = None) -> int:
    setup_logging()
    try:
        cfg = parse_args(argv)
        reports = extract(cfg)
    except (ConfigError, LayoutError, FileNotFoundError, ValueError) as err:
        log.error("%s", err)
        return 2
    failed = {f"{name}: {clip}": why for name, r in reports.items() for clip, why in r.failed.items()}
    if dist.rank() != 0:  # the main process reports for all
        return 1 if failed else 0
    for name, r in reports.items():
        rate = f" in {r.seconds:.1f} s ({len(r.done) / r.seconds:.2f} clips/s)" if r.seconds else ""
        log.info("%s: %d extracted, %d up to date, %d failed%s", name, len(r.done), len(r.skipped),
                 len(r.failed), rate)
    if failed:
        log.error("%d clips FAILED:\n%s", len(failed), "\n".join(f"  {k} -- {v}" for k, v in failed.items()))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
