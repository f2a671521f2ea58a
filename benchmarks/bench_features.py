"""Pipeline overhead of feature extraction: whole pipeline vs the bare model forward, same batches.

    python benchmarks/bench_features.py [--frames 96] [--clips 2] [--threads 2] [--config YAML]

The pipeline is ``features.runner.run_jobs`` end to end (worker decoding / resampling overlapped with
the forward pass, normalisation, alignment, atomic writes of features and sidecars). The bare run
feeds the same clips, already decoded, normalised and batched alike, straight to the model. Both
run in this process on the same model; each is timed ``--repeats`` times and the best time is kept.
Default models are the real-size Swin-T (768-d) and Wav2Vec2-base, randomly initialised (the speed
does not depend on the weights). Prints frames/s of both and the overhead ``pipeline / bare - 1``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from features.audio import AudioExtractor  # noqa: E402
from features.config import FeatureConfig  # noqa: E402
from features.extract import build_jobs  # noqa: E402
from features.runner import Extractor, Job, run_jobs  # noqa: E402
from features.video import VideoExtractor  # noqa: E402
from react.config import load_config  # noqa: E402
from react.models.ssl_audio import BASE_CONFIG  # noqa: E402

W2V2_BASE = BASE_CONFIG  # Wav2Vec2-base, for a random model of the real size


def bare_batches(extractor: Extractor, jobs: list[Job], prepare) -> list[torch.Tensor]:
    """The clips read up front and cut into the batches the pipeline forms (model-ready tensors)."""
    rows = torch.cat([chunk for job in jobs for chunk in extractor.reader(job)])
    return [prepare(rows[i:i + extractor.batch_size]) for i in range(0, len(rows), extractor.batch_size)]


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the decoding workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def time_bare(model, batches: list[torch.Tensor], **kwargs) -> tuple[float, float]:
    """(wall, cpu) seconds of the model alone on ready batches."""
    start, cpu = time.perf_counter(), cpu_seconds()
    with torch.inference_mode():
        for batch in batches:
            model(batch, **kwargs)
    return time.perf_counter() - start, cpu_seconds() - cpu


def time_pipeline(extractor: Extractor, jobs: list[Job], workers: int) -> tuple[float, float]:
    """(wall, cpu) seconds of ``run_jobs`` over the clips, writing to a temporary folder."""
    with tempfile.TemporaryDirectory() as out:
        moved = [Job(j.clip, j.source, Path(out) / f"{i}.pth", j.video, j.frames, j.data_dir)
                 for i, j in enumerate(jobs)]
        cpu = cpu_seconds()
        report = run_jobs(moved, extractor, workers=workers, desc="pipeline")
        if report.failed:
            raise SystemExit(f"benchmark clips failed: {report.failed}")
        return report.seconds, cpu_seconds() - cpu


def measure(name: str, extractor: Extractor, jobs: list[Job], batches: list[torch.Tensor], frames: int,
            workers: int, repeats: int, **forward_kwargs) -> float:
    """Print and return the overhead of the pipeline over the bare forward (best wall times).

    Bare and pipeline runs alternate so that a change in machine load hits both alike.
    """
    with torch.inference_mode():
        extractor.model(batches[0], **forward_kwargs)  # warm-up
    bare, pipe = [], []
    for _ in range(repeats):
        bare.append(time_bare(extractor.model, batches, **forward_kwargs))
        pipe.append(time_pipeline(extractor, jobs, workers))
    (bare_wall, bare_cpu), (pipe_wall, pipe_cpu) = min(bare), min(pipe)
    overhead = pipe_wall / bare_wall - 1
    print(f"{name}: bare forward {frames / bare_wall:8.1f} frames/s | pipeline "
          f"{frames / pipe_wall:8.1f} frames/s | overhead {100 * overhead:5.1f} % wall, "
          f"{100 * (pipe_cpu / bare_cpu - 1):5.1f} % cpu time"
          f" ({frames} frames, best of {repeats}, load average {os.getloadavg()[0]:.1f})", flush=True)
    return overhead


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", help="a REACT-layout dataset (default: a synthetic one in a temp dir)")
    parser.add_argument("--clips", type=int, default=2, help="clips of the test split used")
    parser.add_argument("--frames", type=int, default=64, help="video frames per clip")
    parser.add_argument("--audio-frames", type=int, default=751, help="audio grid frames per clip (30 s)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the target is on 2 cores)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="alternating bare/pipeline runs; best kept")
    parser.add_argument("--config", help="feature YAML (default: real-size Swin-T and Wav2Vec2-base)")
    parser.add_argument("--skip-audio", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(args.data_dir) if args.data_dir else _synthetic(Path(tmp), args.clips)
        base = [f"data.root={data}", f"out_dir={tmp}/unused", "split=test", f"workers={args.workers}",
                "video.random_init=true", "audio.random_init=true"]
        if not args.config:
            base += [f"audio.arch.{key}={json.dumps(value)}" for key, value in W2V2_BASE.items()]
        print(f"\ntorch threads {torch.get_num_threads()}, decoding workers {args.workers}, cpu count "
              f"{os.cpu_count()}, load average {os.getloadavg()[0]:.1f}", flush=True)

        cfg = load_config(args.config, base + ["type=video", f"frames={args.frames}"], schema=FeatureConfig)
        video = VideoExtractor(cfg)
        video.load()
        jobs = build_jobs(cfg, "test", "video")[: args.clips]
        batches = bare_batches(video, jobs, video.normalise)
        overhead = measure(f"video {cfg.video.backbone} ({cfg.video.batch_size}/batch)", video, jobs, batches,
                           args.frames * len(jobs), args.workers, args.repeats)
        print(f"video pipeline overhead {100 * overhead:.1f} % (target <= 15 % on 2 cores)")
        if not args.skip_audio:
            cfg = load_config(args.config, base + ["type=audio", f"frames={args.audio_frames}"],
                              schema=FeatureConfig)
            audio = AudioExtractor(cfg)
            audio.load()
            jobs = build_jobs(cfg, "test", "audio")[: args.clips]
            batches = bare_batches(audio, jobs, lambda x: x)
            measure(f"audio {cfg.audio.backbone} ({cfg.audio.batch_size} clips/batch)", audio, jobs, batches,
                    args.audio_frames * len(jobs), args.workers, args.repeats, output_hidden_states=True)
    return 0


def _synthetic(root: Path, clips: int) -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    import make_synthetic_react

    pairs = (clips + 1) // 2
    return make_synthetic_react.generate(root / "data", pairs=1, eval_pairs=pairs, seed=0, workers=2)


if __name__ == "__main__":
    raise SystemExit(main())
