"""Write a synthetic speech-emotion corpus in the RAVDESS layout (docs/data.md).

``<out>/Actor_XX/03-01-EE-II-SS-RR-XX.wav``: odd actors male, even female; neutral has only normal
intensity, as in RAVDESS. A numpy source-filter synthesiser (glottal pulse train -> spectral tilt ->
vowel formant resonators, with fricative/plosive noise for consonants) speaks the two RAVDESS
statements as syllable sequences. The emotion sets the prosody: pitch level and range, final
contour, speaking rate, energy, spectral tilt, jitter, tremor and breathiness; strong intensity
exaggerates it. The actor sets the voice: pitch by sex, vocal-tract length (timbre), own rate,
loudness, breathiness, tilt and how expressive they are; every utterance adds random variation.
So emotion is learnable across speakers, but absolute pitch or loudness alone does not give it.

    react data synth-ravdess --out-dir data/synthetic_ravdess [--actors 24] [--repetitions 1]

Existing files are kept (each file's randomness depends only on its name and the seed).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.ndimage import gaussian_filter1d
from scipy.signal import butter, lfilter, sosfilt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from react.data.ser_corpus import EMOTIONS  # noqa: E402
from react.utils.cli import add_out_dir  # noqa: E402
from react.utils.progress import progress  # noqa: E402

# Deviations from a neutral voice: pitch level / range (semitones), final contour (semitones,
# + rising), rate factor, energy (dB), tilt (one-pole coefficient: higher = duller), jitter
# (semitones), tremor (semitones at 6 Hz), breathiness (noise share).
PROSODY = {
    "neutral":   dict(level=0.0, range=2.0, contour=-1.0, rate=1.00, energy=0.0, tilt=0.88, jitter=0.08, tremor=0.0, breath=0.00),  # noqa: E501
    "calm":      dict(level=-1.0, range=1.2, contour=-1.5, rate=0.85, energy=-3.0, tilt=0.92, jitter=0.05, tremor=0.0, breath=0.05),  # noqa: E501
    "happy":     dict(level=3.0, range=6.0, contour=0.5, rate=1.12, energy=3.0, tilt=0.80, jitter=0.10, tremor=0.0, breath=0.00),  # noqa: E501
    "sad":       dict(level=-2.0, range=1.0, contour=-3.0, rate=0.75, energy=-5.0, tilt=0.94, jitter=0.20, tremor=0.0, breath=0.10),  # noqa: E501
    "angry":     dict(level=2.5, range=4.5, contour=-2.5, rate=1.15, energy=6.0, tilt=0.70, jitter=0.25, tremor=0.0, breath=0.00),  # noqa: E501
    "fearful":   dict(level=5.0, range=3.0, contour=1.0, rate=1.22, energy=0.0, tilt=0.85, jitter=0.30, tremor=0.8, breath=0.08),  # noqa: E501
    "disgust":   dict(level=-1.5, range=3.0, contour=-2.0, rate=0.80, energy=1.0, tilt=0.86, jitter=0.35, tremor=0.0, breath=0.04),  # noqa: E501
    "surprised": dict(level=4.0, range=8.0, contour=5.0, rate=1.00, energy=3.0, tilt=0.80, jitter=0.10, tremor=0.0, breath=0.02),  # noqa: E501
}
# Syllables of the two statements: (onset consonant, vowel, stressed).
STATEMENTS = {
    "01": [("k", "I", 1), ("", "A", 0), ("t", "O", 1), ("k", "I", 0), ("b", "a", 1), ("D", "@", 0),
           ("d", "O", 1)],  # Kids are talking by the door
    "02": [("d", "O", 1), ("", "A", 0), ("s", "I", 1), ("t", "I", 0), ("b", "a", 1), ("D", "@", 0),
           ("d", "O", 1)],  # Dogs are sitting by the door
}
# Male formants F1-F4 (Hz) of the vowels; a shorter vocal tract scales them up.
VOWELS = {"I": (400, 1900, 2550, 3400), "A": (730, 1090, 2440, 3300), "O": (570, 840, 2410, 3300),
          "a": (750, 1300, 2500, 3400), "@": (500, 1500, 2500, 3350)}
BANDWIDTHS = (70.0, 100.0, 140.0, 200.0)
# Consonant noise: (band low, band high in Hz, duration s, closure before the burst s).
CONSONANTS = {"k": (1500, 4000, 0.03, 0.05), "t": (3000, 6000, 0.025, 0.05), "d": (2500, 5000, 0.015, 0.04),
              "b": (300, 1500, 0.012, 0.05), "s": (4000, 7500, 0.10, 0.0), "D": (2000, 5000, 0.05, 0.0)}


@dataclass(frozen=True)
class Voice:
    """The traits of one actor."""

    actor: int
    f0: float  # Hz
    tract: float  # formant scale (vocal-tract length)
    rate: float
    loudness: float  # dB
    breath: float
    tilt: float  # added to the emotion's tilt coefficient
    expressiveness: float  # scales the emotion's deviations


def actor_voice(actor: int, seed: int) -> Voice:
    rng = np.random.default_rng([seed, actor, 7])
    male = actor % 2 == 1
    return Voice(actor=actor,
                 f0=(112.0 if male else 205.0) * 2 ** (rng.normal(0, 2.0) / 12),
                 tract=(1.0 if male else 1.16) * 2 ** rng.normal(0, 0.04),
                 rate=float(np.exp(rng.normal(0, 0.10))), loudness=float(rng.normal(0, 2.5)),
                 breath=float(rng.uniform(0.01, 0.06)), tilt=float(rng.normal(0, 0.025)),
                 expressiveness=float(rng.uniform(0.55, 1.15)))


def _resonate(x: np.ndarray, freq: float, bw: float, sr: int, zi: np.ndarray | None):
    r = np.exp(-np.pi * bw / sr)
    a = [1.0, -2 * r * np.cos(2 * np.pi * freq / sr), r * r]
    b = [sum(a)]  # unit gain at DC
    return lfilter(b, a, x, zi=np.zeros(2) if zi is None else zi)


def _noise_band(rng: np.random.Generator, n: int, lo: float, hi: float, sr: int) -> np.ndarray:
    sos = butter(4, [lo, min(hi, 0.45 * sr)], btype="band", fs=sr, output="sos")
    return sosfilt(sos, rng.standard_normal(n))


def synthesize(voice: Voice, emotion: str, intensity: str, statement: str, rng: np.random.Generator,
               sr: int = 16000) -> np.ndarray:
    """One utterance (float32, mono, ``sr``) of ``statement`` spoken by ``voice`` with ``emotion``."""
    strength = voice.expressiveness * (1.5 if intensity == "02" else 1.0)
    neutral = PROSODY["neutral"]
    p = {k: neutral[k] + strength * (v - neutral[k]) * rng.uniform(0.75, 1.25)
         for k, v in PROSODY[emotion].items()}
    rate = voice.rate * max(p["rate"], 0.5) * rng.uniform(0.93, 1.07)
    syllables = STATEMENTS[statement]
    # timeline of syllables
    lead, tail = rng.uniform(0.12, 0.3), rng.uniform(0.12, 0.3)
    durations = np.array([0.19 + 0.07 * stressed for _, _, stressed in syllables]) / rate
    durations *= rng.uniform(0.85, 1.15, len(durations))
    starts = lead + np.concatenate([[0.0], np.cumsum(durations)[:-1]])
    total = lead + durations.sum() + tail
    n = int(total * sr)
    t = np.arange(n) / sr
    # pitch contour in semitones around the actor's voice
    speech_t = np.clip((t - lead) / durations.sum(), 0, 1)
    semis = p["level"] + rng.normal(0, 0.7) - 1.5 * speech_t + p["contour"] * speech_t ** 3
    for (_, _, stressed), s, d in zip(syllables, starts, durations):
        if stressed:
            accent = np.exp(-0.5 * ((t - s - 0.5 * d) / (0.3 * d)) ** 2)
            semis += 0.5 * p["range"] * rng.uniform(0.6, 1.2) * accent
    semis += p["tremor"] * np.sin(2 * np.pi * rng.uniform(5, 7) * t)
    semis += gaussian_filter1d(rng.standard_normal(n), sr * 0.004) * p["jitter"] * np.sqrt(sr * 0.004) * 2
    f0 = voice.f0 * 2 ** (semis / 12)
    # glottal source: Rosenberg pulse per period, derivative, tilt, breath noise
    phase = np.cumsum(f0 / sr) % 1.0
    pulse = np.where(phase < 0.4, 0.5 * (1 - np.cos(np.pi * phase / 0.4)),
                     np.where(phase < 0.6, np.cos(np.pi * (phase - 0.4) / 0.4), 0.0))
    source = np.diff(pulse, prepend=0.0)
    tilt = np.clip(p["tilt"] + voice.tilt, 0.3, 0.985)
    source = lfilter([1.0], [1.0, -tilt], source)
    source /= source.std() + 1e-9
    breath = np.clip(voice.breath + p["breath"], 0, 0.5)
    source = (1 - breath) * source + breath * 2.0 * rng.standard_normal(n)
    # vowels: voicing envelope and formant filtering, syllable by syllable
    out = np.zeros(n)
    zis = [None] * 4
    for (onset, vowel, stressed), s, d in zip(syllables, starts, durations):
        closure = CONSONANTS[onset][2] + CONSONANTS[onset][3] if onset else 0.0
        v0, v1 = int((s + closure) * sr), int((s + d) * sr)
        seg = source[v0:v1] * np.hanning(v1 - v0) ** 0.3 * (1.4 if stressed else 1.0)
        for i, (freq, bw) in enumerate(zip(VOWELS[vowel], BANDWIDTHS)):
            freq = freq * voice.tract * rng.uniform(0.96, 1.04)
            seg, zis[i] = _resonate(seg, freq, bw * voice.tract, sr, zis[i])
        out[v0:v1] = seg
        if onset:
            lo, hi, dur, gap = CONSONANTS[onset]
            c0 = int((s + gap) * sr)
            burst = _noise_band(rng, int(dur * sr), lo * voice.tract, hi * voice.tract, sr)
            out[c0:c0 + burst.size] += 0.5 * burst * np.hanning(burst.size)
    speech = out[int(lead * sr):int((total - tail) * sr)]
    level_db = -26.0 + p["energy"] + voice.loudness + rng.normal(0, 1.0)
    out *= 10 ** (level_db / 20) / (np.sqrt(np.mean(speech ** 2)) + 1e-9)
    out += 10 ** (-62 / 20) * rng.standard_normal(n)  # recording noise floor
    peak = np.abs(out).max()
    return (out / peak * 0.99 if peak > 0.99 else out).astype(np.float32)


def file_grid(actors: int, repetitions: int) -> list[tuple[int, str, str, str, str]]:
    """(actor, emotion code, intensity, statement, repetition) of every file, RAVDESS style."""
    grid = []
    for actor in range(1, actors + 1):
        for e, emotion in enumerate(EMOTIONS, start=1):
            for intensity in (["01"] if emotion == "neutral" else ["01", "02"]):
                for statement in STATEMENTS:
                    for rep in range(1, repetitions + 1):
                        grid.append((actor, f"{e:02d}", intensity, statement, f"{rep:02d}"))
    return grid


def write_corpus(out_dir: str | os.PathLike, actors: int, repetitions: int, sample_rate: int,
                 wave_of: Callable[[int, str, str, str, str], np.ndarray]) -> list[Path]:
    """Write ``wave_of(actor, emotion, intensity, statement, repetition)`` for every file of the
    RAVDESS grid (temporary name, then rename); existing files are kept. Returns all paths."""
    if not 1 <= actors <= 99:
        raise ValueError(f"--actors must be 1..99, got {actors}")
    if not 1 <= repetitions <= 2:
        raise ValueError(f"--repetitions must be 1 or 2 (RAVDESS codes), got {repetitions}")
    out_dir = Path(out_dir)
    paths = []
    for actor, emo, intensity, statement, rep in progress(file_grid(actors, repetitions), desc="synthesising",
                                                      unit="file"):
        path = out_dir / f"Actor_{actor:02d}" / f"03-01-{emo}-{intensity}-{statement}-{rep}-{actor:02d}.wav"
        paths.append(path)
        if path.is_file():
            continue
        wave = wave_of(actor, emo, intensity, statement, rep)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        sf.write(tmp, wave, sample_rate, subtype="PCM_16", format="WAV")
        os.replace(tmp, path)
    return paths


def generate(out_dir: str | os.PathLike, actors: int = 24, repetitions: int = 1, seed: int = 0,
             sample_rate: int = 16000) -> list[Path]:
    """Write the corpus; returns all its file paths (existing files are kept)."""

    def wave_of(actor: int, emo: str, intensity: str, statement: str, rep: str) -> np.ndarray:
        rng = np.random.default_rng([seed, actor, int(emo), int(intensity), int(statement), int(rep)])
        return synthesize(actor_voice(actor, seed), EMOTIONS[int(emo) - 1], intensity, statement, rng,
                          sample_rate)

    return write_corpus(out_dir, actors, repetitions, sample_rate, wave_of)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="react data synth-ravdess",
                                     description="Synthetic RAVDESS-layout speech-emotion corpus")
    add_out_dir(parser, required=True, help="output folder (gets Actor_XX/ subfolders)")
    parser.add_argument("--actors", type=int, default=24)
    parser.add_argument("--repetitions", type=int, default=1, help="1 or 2 repetitions per item")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sample-rate", type=int, default=16000)
    args = parser.parse_args(argv)
    try:
        paths = generate(args.out_dir, args.actors, args.repetitions, args.seed, args.sample_rate)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{len(paths)} files under {args.out_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
