"""Speech-emotion inference on files, on sliding windows of a long file, or on a microphone.

    react ser predict a.wav [b.wav ...] --checkpoint runs/ser_tiny [--json]
    react ser predict long.wav --checkpoint runs/ser_tiny --stream --window 2 --hop 0.5
    react ser predict --mic --checkpoint runs/ser_tiny [--seconds 30] [--plot live.png]
    react ser predict a.wav --checkpoint runs/ser_adapted --enrol speaker_dir/   (speaker-adapted)
    react ser predict a.wav --model ser.onnx [--norm norm.npy]   # the ONNX export, no torch

A file shorter than ``--min-seconds`` or without speech (fewer than ``--min-voiced`` of its 25 ms
frames above ``--silence-db`` dBFS) is an error, not a guess; in a timeline such a window is
reported as ``silence`` without classification.

Every prediction follows the checkpoint's protocol (docs/ser.md). An inductive checkpoint classifies
each file or window on its own. A speaker-adapted one (``normalization=speaker``) needs
``--enrol DIR|FILES``: recordings of the same speaker, none of them among the files classified,
whose statistics normalise every file, window or live block (``--enrol`` on an inductive
checkpoint is an error: it has nothing to adapt). ``--mic`` needs the ``sounddevice`` package and
the PortAudio library (``libportaudio2``); the timeline is printed and, with ``--plot``, redrawn
into a PNG after every window (headless, matplotlib Agg).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from react.data.audio import load_audio
from react.data.ser_corpus import label_space
from react.errors import LayoutError, user_message
from react.ser.inference import classify, model_speaker_norm

SILENCE = "silence"
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


def load_ser_model(checkpoint: str | os.PathLike) -> tuple[nn.Module, list[str], int]:
    """Model (eval mode), class names and sample rate of a ``ser`` checkpoint (the checkpoint
    alone: the SSL weights folder it was trained from is not needed)."""
    from react.engine import load_checkpoint

    _, model, cfg = load_checkpoint(checkpoint, task="ser")
    return model, list(label_space(cfg.data.emotions)), int(cfg.data.sample_rate)


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


def voiced_fraction(wave: np.ndarray, sample_rate: int, silence_db: float) -> float:
    """Share of 25 ms frames whose RMS level is at least ``silence_db`` dBFS."""
    frame = max(1, round(0.025 * sample_rate))
    n = wave.size // frame
    if n == 0:
        return 0.0
    power = np.mean(np.square(wave[: n * frame].reshape(n, frame), dtype=np.float64), axis=1)
    return float(np.mean(10 * np.log10(power + 1e-12) >= silence_db))


def speech_problem(wave: np.ndarray, sample_rate: int, min_seconds: float, silence_db: float,
                   min_voiced: float) -> str | None:
    """Why ``wave`` cannot be classified (too short, no speech), or None."""
    seconds = wave.size / sample_rate
    if seconds < min_seconds:
        return f"too short to classify: {seconds:.2f} s < {min_seconds:g} s"
    voiced = voiced_fraction(wave, sample_rate, silence_db)
    if voiced < min_voiced:
        return (f"no speech detected: {voiced:.0%} of 25 ms frames above {silence_db:g} dBFS "
                f"(needs {min_voiced:.0%})")
    return None


def timeline(model: nn.Module, wave: np.ndarray, sample_rate: int, classes: list[str], window_s: float,
             hop_s: float, silence_db: float, min_voiced: float = 0.1,
             norm: np.ndarray | None = None) -> list[dict]:
    """One entry per sliding window: start/end seconds, label, confidence, probabilities; windows
    with too little speech are labelled ``silence``. ``norm``: the speaker's enrolment statistics
    (``normalization=speaker`` models only)."""
    window, hop = round(window_s * sample_rate), round(hop_s * sample_rate)
    starts = window_starts(wave.size, window, hop)
    chunks = [wave[s:s + window] for s in starts]
    loud = [i for i, c in enumerate(chunks) if voiced_fraction(c, sample_rate, silence_db) >= min_voiced]
    probs = classify(model, [chunks[i] for i in loud], norms=None if norm is None else [norm] * len(loud))
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


class TimelinePlot:
    """The live emotion timeline redrawn into a PNG after every window (matplotlib Agg, headless):
    each class's probability over time, silence left blank."""

    def __init__(self, target: str | os.PathLike, classes: list[str]):
        self.target = Path(target)
        self.classes = classes
        self.rows: list[dict] = []

    def __call__(self, row: dict) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from react.utils.io import atomic_path

        self.rows.append(row)
        times = [r["end"] for r in self.rows]
        fig, ax = plt.subplots(figsize=(8, 3.5))
        for c in self.classes:
            ax.plot(times, [np.nan if r["probs"] is None else r["probs"][c] for r in self.rows], label=c,
                    marker=".")
        confidence = "" if row["confidence"] is None else f" ({row['confidence']:.2f})"
        ax.set(xlabel="time (s)", ylabel="probability", ylim=(0, 1), title=f"now: {row['label']}{confidence}")
        ax.legend(fontsize=7, loc="upper left", ncol=4)
        fig.tight_layout()
        with atomic_path(self.target) as tmp:
            fig.savefig(tmp, format="png", dpi=90)
        plt.close(fig)


def _input_stream(sample_rate: int) -> Any:
    """A sounddevice input stream (mono float32), with a clear error when it cannot be had."""
    try:
        import sounddevice as sd
    except (ImportError, OSError) as err:  # OSError: sounddevice without the PortAudio library
        raise RuntimeError(f"--mic needs the 'sounddevice' package (pip install sounddevice) and the "
                           f"PortAudio library (apt install libportaudio2): {err}") from None
    try:
        return sd.InputStream(samplerate=sample_rate, channels=1, dtype="float32")
    except Exception as err:  # sounddevice.PortAudioError: no input device, busy, bad sample rate
        raise RuntimeError(f"--mic: no usable input device ({err}); python -m sounddevice lists the "
                           "devices") from None


def run_microphone(model: nn.Module, sample_rate: int, classes: list[str], window_s: float, hop_s: float,
                   silence_db: float, seconds: float, min_voiced: float = 0.1,
                   open_stream: Callable[[int], Any] = _input_stream,
                   display: Callable[[dict], None] = _print_row,
                   norm: np.ndarray | None = None) -> list[dict]:
    """Classify the last ``window_s`` of microphone audio every ``hop_s`` (until Ctrl-C or
    ``seconds``); each row goes to ``display``. ``open_stream(sample_rate)`` gives a context
    manager with ``read(frames) -> (array (frames, 1), overflowed)`` (a sounddevice InputStream).
    ``norm``: the speaker's enrolment statistics (speaker-adapted models)."""
    window, hop = round(window_s * sample_rate), round(hop_s * sample_rate)
    buffer = np.zeros(0, dtype=np.float32)
    rows, elapsed = [], 0.0
    with open_stream(sample_rate) as stream:
        while seconds <= 0 or elapsed < seconds - 1e-9:
            block, _overflowed = stream.read(hop)
            block = np.asarray(block, dtype=np.float32).reshape(len(block), -1)[:, 0]
            buffer = np.concatenate([buffer, block])[-window:]
            elapsed += block.size / sample_rate
            started = time.perf_counter()
            row = timeline(model, buffer, sample_rate, classes, window_s, window_s, silence_db, min_voiced,
                           norm)[0]
            row.update(start=max(0.0, elapsed - buffer.size / sample_rate), end=elapsed,
                       latency_ms=1000 * (time.perf_counter() - started))
            rows.append(row)
            display(row)
    return rows


def enrolment_files(sources: list[str]) -> list[str]:
    """``--enrol`` arguments -> audio files: a folder gives its audio files (sorted), a file itself."""
    files = []
    for source in sources:
        path = Path(source)
        if path.is_dir():
            found = sorted(str(f) for f in path.iterdir() if f.suffix.lower() in AUDIO_SUFFIXES)
            if not found:
                raise FileNotFoundError(f"{source}: no audio files ({', '.join(AUDIO_SUFFIXES)}) to enrol")
            files += found
        elif path.is_file():
            files.append(source)
        else:
            raise FileNotFoundError(f"{source}: enrolment file or folder not found")
    return files


def enrolment_norm(model: nn.Module, checkpoint: str, enrol: list[str], classified: list[str],
                   sample_rate: int) -> np.ndarray | None:
    """The speaker statistics a checkpoint's protocol asks for: None for an inductive model, those
    of the ``--enrol`` recordings for a speaker-adapted one (which must not include a classified
    file); a clear error when they are missing or do not apply."""
    adapted = getattr(model, "speaker_norm", False)
    if not adapted:
        if enrol:
            raise ValueError(f"{checkpoint}: an inductive checkpoint (each file classified on its own); "
                             "--enrol applies to speaker-adapted ones (model.normalization=speaker)")
        return None
    if not enrol:
        raise ValueError(f"{checkpoint}: a speaker-adapted checkpoint; give --enrol DIR|FILES, recordings of "
                         "the same speaker that are not among the files classified")
    files = enrolment_files(enrol)
    shared = sorted({str(Path(f).resolve()) for f in files} & {str(Path(f).resolve()) for f in classified})
    if shared:
        raise ValueError(f"{shared[0]}: classified and used for enrolment; the speaker-adapted protocol "
                         "never takes statistics from the evaluated recordings")
    return model_speaker_norm(model, [load_audio(f, sample_rate) for f in files])


def _file_result(path: str, classes: list[str], p, quiet: bool) -> dict:
    """One classified file as a result row, printed unless ``quiet`` (JSON is printed at the end)."""
    probs = {c: float(v) for c, v in zip(classes, p)}
    row = {"file": path, "label": max(probs, key=probs.get), "probs": probs}
    if not quiet:
        print(f"{path}: {row['label']}   {_format_probs(probs)}")
    return row


def _finish(results: list[dict], failures: list[str], as_json: bool) -> int:
    """Print the JSON results (if asked) and every failure; exit status 1 when something failed."""
    if as_json:
        print(json.dumps(results if len(results) != 1 else results[0], indent=2))
    for failure in failures:
        print(f"error: {failure}", file=sys.stderr)
    return 1 if failures else 0


def save_norm(norm: np.ndarray, files: int, target: str) -> int:
    """Write a speaker-adapted model's enrolment statistics for the ONNX export's ``norm`` input."""
    from react.utils.io import atomic_path

    with atomic_path(target) as tmp, open(tmp, "wb") as fh:
        np.save(fh, norm)
    print(f"wrote {target}: mean and std of {norm.shape[1]} frame features over {files} enrolment file(s)")
    return 0


def predict_onnx(args: argparse.Namespace) -> int:
    """Classify whole files with the ONNX export (no torch); the same checks and printout as
    plain mode."""
    from react.ser.onnx_runtime import OnnxSER

    if args.stream or args.mic or args.save_norm:
        print("error: --stream, --mic and --save-norm need --checkpoint; --model classifies whole files",
              file=sys.stderr)
        return 2
    try:
        model = OnnxSER(args.model)
        norm = model.check_norm(np.load(args.norm) if args.norm else None)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {user_message(err)}", file=sys.stderr)
        return 2
    results, failures = [], []
    for path in args.files:
        try:
            wave = load_audio(path, model.sample_rate)
        except LayoutError as err:
            failures.append(str(err))
            continue
        problem = speech_problem(wave, model.sample_rate, args.min_seconds, args.silence_db, args.min_voiced)
        if problem:
            failures.append(f"{path}: {problem}")
            continue
        results.append(_file_result(path, model.classes, model.probs(wave, norm), args.json))
    return _finish(results, failures, args.json)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="react ser predict",
                                     description="Speech-emotion inference")
    parser.add_argument("files", nargs="*", help="wav (or other soundfile-readable) files")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", help="run dir, checkpoint dir or state.pt")
    source.add_argument("--model", help="the ONNX export (react ser export) instead: files only")
    parser.add_argument("--norm", help="--model: the speaker's enrolment statistics (2, F) .npy that a "
                                       "speaker-adapted export needs (written by --save-norm)")
    parser.add_argument("--save-norm", help="--checkpoint of a speaker-adapted model: write the --enrol "
                                            "recordings' statistics to this .npy (for --model --norm) "
                                            "instead of classifying")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument("--stream", action="store_true", help="sliding-window timeline over each file")
    parser.add_argument("--mic", action="store_true", help="live microphone timeline (needs sounddevice)")
    parser.add_argument("--window", type=float, default=2.0, help="window length in seconds")
    parser.add_argument("--hop", type=float, default=0.5, help="hop between windows in seconds")
    parser.add_argument("--silence-db", type=float, default=-55.0, help="frames below this dBFS are silent")
    parser.add_argument("--min-voiced", type=float, default=0.1,
                        help="share of non-silent frames a file or window needs to be classified")
    parser.add_argument("--min-seconds", type=float, default=0.5, help="shortest file that is classified")
    parser.add_argument("--seconds", type=float, default=0.0, help="--mic duration (0 = until Ctrl-C)")
    parser.add_argument("--plot", help="--mic: redraw the live timeline into this PNG after every window")
    parser.add_argument("--enrol", nargs="+", metavar="DIR|FILE",
                        help="speaker-adapted checkpoints: recordings of the speaker (a folder of them, or "
                             "files), not among those classified, whose statistics normalise the speaker")
    args = parser.parse_args(argv)
    if not args.files and not args.mic and not args.save_norm:
        parser.error("give wav files or --mic")
    for flag, value in (("--window", args.window), ("--hop", args.hop)):
        if not value > 0:
            print(f"error: {flag} {value:g}: must be a positive number of seconds", file=sys.stderr)
            return 2
    if args.model:
        return predict_onnx(args)
    try:
        model, classes, sr = load_ser_model(args.checkpoint)
        norm = enrolment_norm(model, args.checkpoint, args.enrol or [], args.files, sr)
        if args.save_norm:
            if norm is None:
                raise ValueError(f"{args.checkpoint}: an inductive checkpoint; its export takes no --norm")
            return save_norm(norm, len(enrolment_files(args.enrol)), args.save_norm)
    except (FileNotFoundError, ValueError, LayoutError) as err:
        print(f"error: {user_message(err)}", file=sys.stderr)
        return 2
    if args.mic:
        try:
            plot = TimelinePlot(args.plot, classes) if args.plot else None

            def show(row: dict) -> None:
                _print_row(row)
                if plot is not None:
                    plot(row)

            run_microphone(model, sr, classes, args.window, args.hop, args.silence_db, args.seconds,
                           args.min_voiced, display=show, norm=norm)
        except RuntimeError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            pass
        return 0
    results, failures, waves = [], [], {}
    for path in args.files:
        try:
            waves[path] = load_audio(path, sr)
        except LayoutError as err:
            failures.append(str(err))
    for path, wave in waves.items():
        # too short in either mode; a timeline labels its silent windows instead of refusing the file
        min_voiced = 0.0 if args.stream else args.min_voiced
        problem = speech_problem(wave, sr, args.min_seconds, args.silence_db, min_voiced)
        if problem:
            failures.append(f"{path}: {problem}")
            continue
        if args.stream:
            rows = timeline(model, wave, sr, classes, args.window, args.hop, args.silence_db, args.min_voiced,
                            norm)
            results.append({"file": path, "timeline": rows})
            if not args.json:
                print(f"{path}:")
                for row in rows:
                    _print_row(row)
        else:
            p = classify(model, [wave], norms=None if norm is None else [norm])[0]
            results.append(_file_result(path, classes, p, args.json))
    return _finish(results, failures, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
