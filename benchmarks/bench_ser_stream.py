"""Streaming speech-emotion latency on the CPU: ``react.ser.predict --stream`` per 5 s window, in
PyTorch and through the exported ONNX model (onnxruntime).

    python benchmarks/bench_ser_stream.py --checkpoint runs/ser_cpu [--threads 1]
    python benchmarks/bench_ser_stream.py --config configs/ser_cpu.yaml      # untrained, same cost
    python benchmarks/bench_ser_stream.py --checkpoint runs/ser_classic      # classic: openSMILE per window

The input is a minute of the synthetic corpus (or any ``--wav``); each window is timed through the
whole timeline path (voicing check, speaker statistics, batch of one, softmax). Goal (issue 12):
under 50 ms per 5 s window, real-time factor under 0.01.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from react.data.audio import load_audio  # noqa: E402
from react.ser.classic import ClassicSER  # noqa: E402
from react.ser.export import export_onnx  # noqa: E402
from react.ser.inference import model_speaker_norm  # noqa: E402
from react.ser.predict import load_ser_model, timeline  # noqa: E402


def _model(args: argparse.Namespace) -> tuple[torch.nn.Module, list[str], int]:
    if args.checkpoint:
        return load_ser_model(args.checkpoint)
    from react.data.ser_corpus import label_space
    from react.tasks import RunPaths, build_task, load_task_config

    cfg = load_task_config(args.config, ["out_dir=/nonexistent"])
    model = build_task(cfg, RunPaths(Path(cfg.out_dir))).build_model(pretrained=False).eval()
    return model, list(label_space(cfg.data.emotions)), int(cfg.data.sample_rate)


def _audio(args: argparse.Namespace, sample_rate: int) -> np.ndarray:
    if args.wav:
        return load_audio(args.wav, sample_rate)
    files = sorted(Path(args.data_dir).rglob("*.wav"))
    if not files:
        raise SystemExit(f"no wav files under {args.data_dir}: give --wav or --data-dir")
    waves, total = [], 0
    for f in files:
        waves.append(load_audio(f, sample_rate))
        total += waves[-1].size
        if total >= args.seconds * sample_rate:
            break
    return np.concatenate(waves)


def _report(name: str, seconds: list[float], window_s: float) -> None:
    ms = 1000 * np.asarray(seconds)
    print(f"{name:<28} {np.median(ms):7.2f} ms median  {np.percentile(ms, 95):7.2f} ms p95  "
          f"real-time factor {np.median(ms) / 1000 / window_s:.4f}  ({len(ms)} windows)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", help="a trained ser run (default: --config's untrained model)")
    parser.add_argument("--config", default="configs/ser_cpu.yaml")
    parser.add_argument("--wav", help="audio to stream (default: files of --data-dir)")
    parser.add_argument("--data-dir", default="data/synthetic_ravdess", help="a RAVDESS-layout corpus")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--window", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (torch and onnxruntime)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model, classes, sr = _model(args)
    wave = _audio(args, sr)
    window = round(args.window * sr)
    chunks = [wave[s:s + window] for s in range(0, wave.size - window + 1, window)]
    norm = model_speaker_norm(model, [wave])
    print(f"{len(chunks)} windows of {args.window:g} s, {args.threads} thread(s), "
          f"speaker statistics: {'yes' if norm is not None else 'no'}")
    timeline(model, chunks[0], sr, classes, args.window, args.window, -55.0, norm=norm)  # warm-up
    torch_times = []
    for chunk in chunks:
        started = time.perf_counter()
        timeline(model, chunk, sr, classes, args.window, args.window, -55.0, norm=norm)
        torch_times.append(time.perf_counter() - started)
    _report("PyTorch (predict --stream)", torch_times, args.window)
    if isinstance(model, ClassicSER):
        print("ONNX Runtime: not timed (the classic model's graph starts after openSMILE's functionals)")
        return 0

    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "ser.onnx"
        export_onnx(model, target, classes, sr)
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        session = ort.InferenceSession(str(target), options, providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]
        onnx_times = []
        for chunk in [chunks[0], *chunks]:
            feeds = {"wave": chunk[None].astype(np.float32)}
            if "norm" in names:
                feeds["norm"] = norm[None]
            started = time.perf_counter()
            session.run(["probs"], feeds)
            onnx_times.append(time.perf_counter() - started)
    _report("ONNX Runtime", onnx_times[1:], args.window)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
