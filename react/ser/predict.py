"""Speech-emotion inference on files, on sliding windows of a long file, or on a microphone.

    python -m react.ser.predict a.wav [b.wav ...] --checkpoint runs/ser_tiny [--json]
    python -m react.ser.predict long.wav --checkpoint runs/ser_tiny --stream --window 2 --hop 0.5
    python -m react.ser.predict --mic --checkpoint runs/ser_tiny [--seconds 30]   # needs sounddevice

Windows quieter than ``--silence-db`` (dBFS RMS) are reported as ``silence`` without classification.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import torch
from torch import nn

from react.data.ser_corpus import CorpusError, label_space, load_audio
from react.tasks.ser import pad_batch

SILENCE = "silence"


def load_ser_model(checkpoint: str | os.PathLike) -> tuple[nn.Module, list[str], int]:
    """Model (eval mode), class names and sample rate of a ``ser`` checkpoint."""
    from react.engine import load_checkpoint_model

    model, cfg = load_checkpoint_model(checkpoint)
    if cfg.task != "ser":
        raise ValueError(f"{checkpoint}: a '{cfg.task}' checkpoint, not a speech-emotion ('ser') one")
    return model, list(label_space(cfg.data.emotions)), int(cfg.data.sample_rate)


@torch.no_grad()
def classify(model: nn.Module, waves: list[np.ndarray], batch_size: int = 16) -> np.ndarray:
    """Class probabilities (N, C) of mono waveforms at the model's sample rate."""
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(waves), batch_size):
        wave, mask = pad_batch([torch.from_numpy(np.ascontiguousarray(w, dtype=np.float32))
                                for w in waves[start:start + batch_size]])
        out.append(torch.softmax(model(wave.to(device), mask.to(device))["logits"].float(), -1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


def window_starts(n_samples: int, window: int, hop: int) -> list[int]:
    """Starts of windows every ``hop`` samples; a last window is aligned to the end to cover it."""
    if window <= 0 or hop <= 0:
        raise ValueError("window and hop must be positive")
    if n_samples <= window:
        return [0]
    starts = list(range(0, n_samples - window + 1, hop))
    if starts[-1] + window < n_samples:
        starts.append(n_samples - window)
    return starts


def rms_db(wave: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.square(wave, dtype=np.float64)) + 1e-12))


def timeline(model: nn.Module, wave: np.ndarray, sample_rate: int, classes: list[str], window_s: float,
             hop_s: float, silence_db: float) -> list[dict]:
    """One entry per sliding window: start/end seconds, label, confidence, probabilities."""
    window, hop = round(window_s * sample_rate), round(hop_s * sample_rate)
    starts = window_starts(wave.size, window, hop)
    chunks = [wave[s:s + window] for s in starts]
    loud = [i for i, c in enumerate(chunks) if rms_db(c) >= silence_db]
    probs = classify(model, [chunks[i] for i in loud])
    rows = [{"start": s / sample_rate, "end": (s + chunks[i].size) / sample_rate, "label": SILENCE,
             "confidence": None, "probs": None} for i, s in enumerate(starts)]
    for i, p in zip(loud, probs):
        rows[i].update(label=classes[int(p.argmax())], confidence=float(p.max()),
                       probs={c: float(v) for c, v in zip(classes, p)})
    return rows


def _format_probs(probs: dict[str, float]) -> str:
    return "  ".join(f"{c} {p:.3f}" for c, p in sorted(probs.items(), key=lambda kv: -kv[1]))


def _print_row(row: dict) -> None:
    head = f"{row['start']:7.2f}-{row['end']:7.2f} s  {row['label']:<10}"
    print(head if row["probs"] is None else f"{head} {row['confidence']:.3f}   {_format_probs(row['probs'])}",
          flush=True)


def run_microphone(model: nn.Module, sample_rate: int, classes: list[str], window_s: float, hop_s: float,
                   silence_db: float, seconds: float) -> None:
    """Classify the last ``window_s`` of microphone audio every ``hop_s`` (until Ctrl-C or ``seconds``)."""
    try:
        import sounddevice as sd
    except ImportError:
        raise RuntimeError("--mic needs the 'sounddevice' package (pip install sounddevice)") from None
    window, hop = round(window_s * sample_rate), round(hop_s * sample_rate)
    buffer = np.zeros(0, dtype=np.float32)
    elapsed = 0.0
    with sd.InputStream(samplerate=sample_rate, channels=1, dtype="float32") as stream:
        while seconds <= 0 or elapsed < seconds:
            block, _overflow = stream.read(hop)
            buffer = np.concatenate([buffer, block[:, 0]])[-window:]
            elapsed += hop_s
            row = timeline(model, buffer, sample_rate, classes, window_s, window_s, silence_db)[0]
            row["start"], row["end"] = max(0.0, elapsed - buffer.size / sample_rate), elapsed
            _print_row(row)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Speech-emotion inference")
    parser.add_argument("files", nargs="*", help="wav (or other soundfile-readable) files")
    parser.add_argument("--checkpoint", required=True, help="run dir, checkpoint dir or state.pt")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument("--stream", action="store_true", help="sliding-window timeline over each file")
    parser.add_argument("--mic", action="store_true", help="live microphone timeline (needs sounddevice)")
    parser.add_argument("--window", type=float, default=2.0, help="window length in seconds")
    parser.add_argument("--hop", type=float, default=0.5, help="hop between windows in seconds")
    parser.add_argument("--silence-db", type=float, default=-55.0, help="windows below this dBFS are silence")
    parser.add_argument("--seconds", type=float, default=0.0, help="--mic duration (0 = until Ctrl-C)")
    args = parser.parse_args(argv)
    if not args.files and not args.mic:
        parser.error("give wav files or --mic")
    try:
        model, classes, sr = load_ser_model(args.checkpoint)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.mic:
        try:
            run_microphone(model, sr, classes, args.window, args.hop, args.silence_db, args.seconds)
        except RuntimeError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            pass
        return 0
    results, failures = [], []
    for path in args.files:
        try:
            wave = load_audio(path, sr)
        except CorpusError as err:
            failures.append(str(err))
            continue
        if args.stream:
            rows = timeline(model, wave, sr, classes, args.window, args.hop, args.silence_db)
            results.append({"file": path, "timeline": rows})
            if not args.json:
                print(f"{path}:")
                for row in rows:
                    _print_row(row)
        else:
            probs = {c: float(p) for c, p in zip(classes, classify(model, [wave])[0])}
            label = max(probs, key=probs.get)
            results.append({"file": path, "label": label, "probs": probs})
            if not args.json:
                print(f"{path}: {label}   {_format_probs(probs)}")
    if args.json:
        print(json.dumps(results if len(results) != 1 else results[0], indent=2))
    for failure in failures:
        print(f"error: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
