"""A second synthetic speech-emotion corpus in the RAVDESS layout, built differently from
``make_synthetic_ravdess.py``, to check that a configuration generalises beyond one generator.

Differences: additive harmonic synthesis (each harmonic's amplitude set by a vocal-effort rolloff
and the formant envelope, no glottal pulse filter), a Fujisaki-style pitch model (phrase and accent
commands through critically damped filters), parallel formant envelopes with emotion-dependent
formant shifts (smiling raises F2), other emotion profiles, per-actor room reverberation and pink
background noise, 22.05 kHz files. Actors, emotions, intensities and names follow RAVDESS.

    react data synth-ravdess-alt --out-dir data/synthetic_ravdess_alt [--actors 24]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
from scipy.signal import fftconvolve, lfilter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from make_synthetic_ravdess import write_corpus  # noqa: E402

from react.data.ser_corpus import EMOTIONS  # noqa: E402
from react.utils.cli import add_out_dir  # noqa: E402

# pitch shift (semitones), accent size, phrase fall, rate, effort (dB), rolloff (dB/octave), F2 shift,
# vibrato depth (semitones), aspiration
PROFILE = {
    "neutral":   (0.0, 1.0, 1.0, 1.00, 0.0, -12.0, 0.00, 0.0, 0.02),
    "calm":      (-1.5, 0.6, 0.8, 0.88, -4.0, -14.0, 0.00, 0.0, 0.06),
    "happy":     (2.5, 2.2, 0.4, 1.10, 2.0, -9.0, 0.06, 0.0, 0.02),
    "sad":       (-1.0, 0.4, 1.4, 0.78, -6.0, -15.0, -0.03, 0.3, 0.10),
    "angry":     (3.0, 1.6, 1.8, 1.12, 7.0, -6.0, 0.00, 0.0, 0.01),
    "fearful":   (4.5, 1.2, -0.3, 1.25, 0.0, -10.0, 0.02, 0.9, 0.08),
    "disgust":   (-2.0, 1.3, 1.2, 0.82, 1.5, -11.0, -0.05, 0.2, 0.05),
    "surprised": (5.0, 2.8, -1.5, 1.02, 3.0, -9.5, 0.04, 0.0, 0.03),
}
VOWELS = [(310, 2020, 2960), (660, 1720, 2410), (570, 1030, 2530), (440, 1020, 2240), (760, 1320, 2500)]


def actor_traits(actor: int, seed: int) -> dict:
    rng = np.random.default_rng([seed, actor, 11])
    male = actor % 2 == 1
    return {"f0": (120.0 if male else 215.0) * 2 ** (rng.normal(0, 1.6) / 12),
            "tract": (1.0 if male else 1.14) * 2 ** rng.normal(0, 0.05),
            "rate": float(np.exp(rng.normal(0, 0.12))),
            "gain": float(rng.normal(0, 3.0)), "rolloff": float(rng.normal(0, 1.5)),
            "expressive": float(rng.uniform(0.5, 1.2)), "rt60": float(rng.uniform(0.15, 0.5)),
            "syllables": int(rng.integers(6, 9))}


def _fujisaki(t: np.ndarray, commands: list[tuple[float, float]], alpha: float) -> np.ndarray:
    """Sum of critically damped responses ``a * (alpha t) exp(-alpha t)`` to impulse commands."""
    out = np.zeros_like(t)
    for onset, amp in commands:
        x = np.clip(t - onset, 0, None) * alpha
        out += amp * x * np.exp(-x) * np.e
    return out


def synthesize(traits: dict, emotion: str, intensity: str, statement: str, rng: np.random.Generator,
               sr: int = 22050) -> np.ndarray:
    shift, accent, fall, rate, effort, rolloff, f2, vibrato, aspiration = PROFILE[emotion]
    k = traits["expressive"] * (1.6 if intensity == "02" else 1.0) * rng.uniform(0.8, 1.2)
    n_syl = traits["syllables"] + int(statement == "02")
    syl = 0.2 / (traits["rate"] * (1 + k * (rate - 1))) * rng.uniform(0.8, 1.2, n_syl)
    lead = rng.uniform(0.1, 0.25)
    total = lead + syl.sum() + rng.uniform(0.15, 0.3)
    t = np.arange(int(total * sr)) / sr
    onsets = lead + np.concatenate([[0.0], np.cumsum(syl)[:-1]])
    accents = [(o, k * accent * rng.uniform(0.5, 1.5)) for o in onsets[rng.random(n_syl) < 0.45]]
    semis = k * shift + _fujisaki(t, [(lead, 2.0 - k * fall)], 2.0) + _fujisaki(t, accents, 18.0)
    semis += k * vibrato * np.sin(2 * np.pi * 5.5 * t) + 0.1 * rng.standard_normal() * t
    f0 = traits["f0"] * 2 ** (semis / 12)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    # which vowel sounds when, and the voicing envelope (gaps between syllables)
    idx = np.clip(np.searchsorted(onsets, t) - 1, 0, n_syl - 1)
    vowel = np.array([VOWELS[(int(statement) * 3 + i) % len(VOWELS)] for i in range(n_syl)])[idx]
    pos = (t - onsets[idx]) / syl[idx]
    voiced = ((t >= lead) & (t < lead + syl.sum()) & (pos > 0.15)).astype(float)
    voiced = np.convolve(voiced, np.hanning(int(0.02 * sr)) / (0.01 * sr), mode="same")
    formants = vowel * traits["tract"] * np.array([1.0, 1.0 + k * f2, 1.0])
    rolloff_db = k * (rolloff + 12.0) - 12.0 + traits["rolloff"]
    wave = np.zeros_like(t)
    for h in range(1, 40):
        freq = h * f0
        envelope = sum(np.exp(-0.5 * ((freq - f) / (60 + 0.08 * f)) ** 2) for f in formants.T)
        amp = 10 ** (rolloff_db * np.log2(h) / 20) * (0.15 + envelope) * (freq < 0.45 * sr)
        wave += amp * np.sin(h * phase)
    wave = wave * voiced + aspiration * k * voiced * rng.standard_normal(t.size) * 0.3
    room = rng.standard_normal(int(traits["rt60"] * sr)) * np.exp(-6.9 * np.arange(int(traits["rt60"] * sr))
                                                                    / (traits["rt60"] * sr))
    room[0] = 8.0
    wave = fftconvolve(wave, room / np.abs(room).sum() * 4)[: t.size]
    level = -24 + k * effort + traits["gain"] + rng.normal(0, 1.0)
    wave *= 10 ** (level / 20) / (np.sqrt(np.mean(wave[voiced > 0.5] ** 2)) + 1e-9)
    pink = lfilter([0.049922, -0.095993, 0.050612, -0.004408], [1, -2.494956, 2.017265, -0.522189],
                   rng.standard_normal(t.size))
    wave += 10 ** (-55 / 20) * pink / (pink.std() + 1e-9)
    peak = np.abs(wave).max()
    return (wave / peak * 0.99 if peak > 0.99 else wave).astype(np.float32)


def generate(out_dir: str | os.PathLike, actors: int = 24, repetitions: int = 2, seed: int = 1,
             sample_rate: int = 22050) -> list[Path]:
    """Write the corpus; returns all its file paths (existing files are kept)."""

    def wave_of(actor: int, emo: str, intensity: str, statement: str, rep: str) -> np.ndarray:
        rng = np.random.default_rng([seed, actor, int(emo), int(intensity), int(statement), int(rep), 5])
        return synthesize(actor_traits(actor, seed), EMOTIONS[int(emo) - 1], intensity, statement, rng,
                          sample_rate)

    return write_corpus(out_dir, actors, repetitions, sample_rate, wave_of)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="react data synth-ravdess-alt",
                                     description="Second, differently built synthetic RAVDESS-layout corpus")
    add_out_dir(parser, required=True, help="output folder (gets Actor_XX/ subfolders)")
    parser.add_argument("--actors", type=int, default=24)
    parser.add_argument("--repetitions", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        paths = generate(args.out_dir, args.actors, args.repetitions, args.seed)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{len(paths)} files under {args.out_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
