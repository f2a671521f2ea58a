"""A second synthetic Magic XRoom generator, written independently of ``make_synthetic_xroom.py``
from the physiology in docs/tools.md ("Second generator: design"): the same file formats, other
latent states, other signal shapes, other nuisance.

Three latent variables per level (arousal, stress, engagement) wander around the state's values
(an Ornstein-Uhlenbeck process) and follow level changes with a lag. Skin conductance: a tonic
level that follows arousal slowly and multiplies the person's baseline, electrode drift, Bateman-
shaped responses at an arousal-driven rate (some people hardly respond). Heart: rate up with
arousal and stress, respiratory sinus arrhythmia that shrinks with stress, PPG built beat by beat
(systolic and dicrotic peaks) with motion artefacts. Body: gaze shifts and reaching movements at an
engagement-driven rate (scaled by the level's demand), fidget bursts at a stress-driven rate,
postural sway. Each session starts with 60 s of rest.

    python scripts/make_synthetic_xroom_alt.py --out-dir data/xroom_alt [--participants 8] [--sessions 2]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy.ndimage import uniform_filter1d
from scipy.signal import lfilter

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_synthetic_xroom as formats  # noqa: E402  (file formats only: write_files, generate)

from react.data.xroom import LABELS  # noqa: E402

HZ = 100.0  # simulation rate
REST_S = 60.0
# latent means: arousal, stress, engagement
LATENT = {"REST": (0.15, 0.1, 0.0), "BORED": (0.1, 0.25, 0.1), "ENGAGED": (0.6, 0.15, 0.9),
          "FRUSTRATED": (0.75, 0.9, 0.45)}


def person(seed: int, p: int) -> dict:
    """A participant's physiology and behaviour, fixed across sessions."""
    rng = np.random.default_rng([seed, p, 4242])
    return {"scl": float(np.exp(rng.uniform(np.log(1.0), np.log(20.0)))),
            "scr_gain": 0.1 if rng.random() < 0.1 else rng.uniform(0.5, 1.5),  # one in ten hardly responds
            "hr_rest": rng.uniform(55.0, 85.0), "rsa": rng.uniform(2.0, 8.0),
            "resp_hz": rng.uniform(0.2, 0.3),
            "ppg_offset": rng.uniform(1500.0, 2500.0), "ppg_amp": rng.uniform(30.0, 150.0),
            "height": rng.uniform(1.50, 1.95), "reach": rng.uniform(0.5, 0.8),
            "fidget": rng.uniform(0.5, 2.0),
            "sway": rng.uniform(0.005, 0.02), "mix": rng.dirichlet([3.0, 3.0, 3.0])}


def session_events(rng: np.random.Generator, levels: int, mix: np.ndarray) -> tuple[list, list]:
    """Event rows ``(t, type, info)`` and level spans ``(start, end, state)``."""
    events = [(0.5, "TELEPORT_IN", "gallery"), (2.0, "SCENARIO_STARTED", "gallery")]
    spans, t, carried = [], 2.0 + REST_S, None
    for i in range(levels):
        state = carried or LABELS[rng.choice(3, p=mix)]
        end = t + rng.uniform(20.0, 40.0)
        failed = rng.random() < {"BORED": 0.15, "ENGAGED": 0.35, "FRUSTRATED": 0.6}[state]
        events += [(t, "LEVEL_STARTED", str(i)),
                   (end, "LEVEL_FAILED" if failed else "LEVEL_COMPLETED", str(i))]
        spans.append((t, end, state))
        kind = rng.choice(["report", "feedback", "skip", "late", "none"], p=[0.8, 0.05, 0.05, 0.05, 0.05])
        said_t = end + (rng.uniform(11.0, 25.0) if kind == "late" else rng.uniform(1.0, 6.0))
        if kind in ("report", "late"):
            said = LABELS[rng.integers(3)] if rng.random() < 0.15 else state
            events.append((said_t, said, str(int(rng.integers(1000, 5000)))))
        elif kind == "feedback":
            value = {"BORED": rng.uniform(0.0, 0.35), "ENGAGED": rng.uniform(0.45, 0.55),
                     "FRUSTRATED": rng.uniform(0.65, 1.0)}[state]
            events.append((said_t, "FEEDBACK_RECEIVED", f"{value:.3f}"))
        elif kind == "skip":
            events.append((said_t, "SKIP", str(int(rng.integers(1000, 5000)))))
        carried = state if kind == "none" else None
        t = max(end, said_t) + rng.uniform(4.0, 10.0)
    events += [(t, "TELEPORT_OUT", "gallery"), (t, "SCENARIO_ENDED", "gallery")]
    return events, spans


def lag(x: np.ndarray, tau_s: float) -> np.ndarray:
    """First-order low-pass (exponential approach) with time constant ``tau_s``."""
    a = 1.0 / (tau_s * HZ)
    return lfilter([a], [1.0, a - 1.0], x, zi=[(1.0 - a) * x[0]])[0]


def latents(rng: np.random.Generator, tm: np.ndarray, spans: list) -> np.ndarray:
    """(n, 3) arousal, stress, engagement: the state's means, followed with a 5 s lag, plus an
    Ornstein-Uhlenbeck wander (time constant 8 s, sd 0.08)."""
    target = np.tile(LATENT["REST"], (len(tm), 1))
    for start, end, state in spans:
        target[(tm >= start) & (tm < end)] = LATENT[state]
    step = np.exp(-1.0 / (8.0 * HZ))
    shocks = rng.standard_normal((len(tm), 3)) * 0.08 * np.sqrt(1 - step**2)
    wander = lfilter([1.0], [1.0, -step], shocks, axis=0)
    return np.clip(np.column_stack([lag(target[:, j], 5.0) for j in range(3)]) + wander, 0.0, 1.0)


def poisson_onsets(rng: np.random.Generator, rate_per_min: np.ndarray) -> np.ndarray:
    return np.flatnonzero(rng.random(len(rate_per_min)) < rate_per_min / 60.0 / HZ)


def skin_conductance(rng: np.random.Generator, me: dict, arousal: np.ndarray, tm: np.ndarray) -> np.ndarray:
    """µS: baseline times a slow arousal gain, electrode drift, Bateman responses."""
    tonic = me["scl"] * (1.0 + 0.5 * lag(arousal, 20.0))
    drift = rng.uniform(-0.5, 0.5) * tm / 600.0
    k = np.arange(int(15 * HZ)) / HZ
    bateman = np.exp(-k / 2.0) - np.exp(-k / 0.75)
    impulses = np.zeros(len(tm))
    onsets = poisson_onsets(rng, 0.5 + 12.0 * arousal)
    impulses[onsets] = me["scr_gain"] * rng.lognormal(np.log(0.3), 0.5, len(onsets))
    phasic = np.convolve(impulses, bateman / bateman.max())[:len(tm)]
    return tonic + drift + phasic + 0.01 * rng.standard_normal(len(tm))


def cardiac(rng: np.random.Generator, me: dict, arousal: np.ndarray, stress: np.ndarray, tm: np.ndarray,
            motion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """PPG built beat by beat and the device's beat-to-beat heart rate (bpm, whole numbers)."""
    resp = me["resp_hz"] + 0.05 * arousal
    resp_phase = 2 * np.pi * np.cumsum(resp) / HZ
    rate = (me["hr_rest"] + 10.0 * arousal + 6.0 * stress
            + me["rsa"] * np.clip(1.0 - 0.6 * stress - 0.3 * arousal, 0.1, None) * np.sin(resp_phase))
    beats = np.flatnonzero(np.diff(np.floor(np.cumsum(rate / 60.0) / HZ)) > 0) + 1
    strength = 1.0 - 0.3 * stress  # vasoconstriction: a smaller pulse under stress
    k = np.arange(int(0.8 * HZ)) / HZ
    shape = np.exp(-0.5 * ((k - 0.15) / 0.06) ** 2) + 0.4 * np.exp(-0.5 * ((k - 0.42) / 0.08) ** 2)
    impulses = np.zeros(len(tm))
    impulses[beats] = strength[beats] * rng.normal(1.0, 0.05, len(beats))
    pulse = np.convolve(impulses, shape)[:len(tm)]
    ppg = (me["ppg_offset"] + me["ppg_amp"] * (pulse + 0.15 * np.sin(resp_phase))
           + 40.0 * motion + 3.0 * rng.standard_normal(len(tm)))
    intervals = np.diff(tm[beats])
    hr = np.interp(tm, tm[beats[1:]], 60.0 / intervals) if len(beats) > 2 else rate
    return ppg, np.round(hr)


def min_jerk(n: int) -> np.ndarray:
    s = np.linspace(0.0, 1.0, n)
    return 10 * s**3 - 15 * s**4 + 6 * s**5


def movements(rng: np.random.Generator, rate_per_min: np.ndarray, dims: int, size: float,
              duration_s: tuple[float, float]) -> np.ndarray:
    """(n, dims) positions moved from target to target along minimum-jerk paths, at the given rate."""
    n = len(rate_per_min)
    out = np.zeros((n, dims))
    current = np.zeros(dims)
    last = 0
    for onset in poisson_onsets(rng, rate_per_min):
        if onset < last:
            continue
        out[last:onset] = current
        length = min(int(rng.uniform(*duration_s) * HZ), n - onset)
        target = rng.normal(0.0, size, dims)
        out[onset:onset + length] = current + np.outer(min_jerk(length), target - current)
        current, last = out[onset + length - 1], onset + length
    out[last:] = current
    return out


def fidgets(rng: np.random.Generator, rate_per_min: np.ndarray, dims: int, tm: np.ndarray) -> np.ndarray:
    """Bursts of 1-3 s of 4-7 Hz tremor-like oscillation, at the given rate."""
    out = np.zeros((len(tm), dims))
    for onset in poisson_onsets(rng, rate_per_min):
        length = min(int(rng.uniform(1.0, 3.0) * HZ), len(tm) - onset)
        f, phase = rng.uniform(4.0, 7.0), rng.uniform(0, 2 * np.pi, dims)
        envelope = np.hanning(length)[:, None]
        out[onset:onset + length] += envelope * np.sin(2 * np.pi * f * tm[onset:onset + length, None] + phase)
    return out


def quat_yaw_pitch(yaw: np.ndarray, pitch: np.ndarray) -> np.ndarray:
    """(n, 4) x, y, z, w of a yaw about Y followed by a pitch about X."""
    cy, sy, cp, sp = np.cos(yaw / 2), np.sin(yaw / 2), np.cos(pitch / 2), np.sin(pitch / 2)
    return np.column_stack([cy * sp, sy * cp, -sy * sp, cy * cp])


def body(rng: np.random.Generator, me: dict, lat: np.ndarray, tm: np.ndarray, spans: list) -> tuple:
    """VR channels (21), wrist acceleration (3) and the motion that disturbs the PPG."""
    _, stress, engagement = lat.T
    demand = np.ones(len(tm))
    for start, end, _ in spans:
        demand[(tm >= start) & (tm < end)] = rng.uniform(0.5, 1.5)
    gaze = movements(rng, 4.0 + 16.0 * engagement, 2, 0.35, (0.2, 0.4))
    fid = fidgets(rng, (1.0 + 8.0 * stress) * me["fidget"], 9, tm)
    sway = uniform_filter1d(np.cumsum(rng.standard_normal((len(tm), 3)), 0) * me["sway"] / 10, int(2 * HZ), 0)
    head_pos = np.array([0.0, me["height"] - 0.1, 0.0]) + sway + 0.004 * fid[:, :3]
    head_rot = quat_yaw_pitch(gaze[:, 0] + 0.02 * fid[:, 3], 0.5 * gaze[:, 1] + 0.02 * fid[:, 4])
    parts, wrist = [head_pos, head_rot], None
    for side in (-1.0, 1.0):
        reach = movements(rng, (2.0 + 14.0 * engagement) * demand, 3, 0.25 * me["reach"], (0.6, 1.2))
        pos = np.array([0.2 * side, me["height"] - 0.55, 0.35]) + reach + 0.01 * fid[:, 5:8]
        rot = quat_yaw_pitch(0.8 * reach[:, 0] + 0.05 * fid[:, 8], 0.8 * reach[:, 1])
        parts += [pos, rot]
        wrist = pos if wrist is None else wrist  # the Shimmer is on the left wrist
    accel = np.gradient(np.gradient(wrist, 1 / HZ, axis=0), 1 / HZ, axis=0)
    accel = accel + np.array([0.0, 9.81, 0.0]) + 0.05 * rng.standard_normal((len(tm), 3))
    motion = uniform_filter1d(np.linalg.norm(accel - [0.0, 9.81, 0.0], axis=1), int(0.5 * HZ))
    return np.concatenate(parts, axis=1), accel, motion


def write_session(folder: Path, seed: int, p: int, s: int, levels: int = 10, variant: str = "standard",
                  shimmer_hz: float = 50.0, vr_hz: float = 30.0) -> str:
    """One session's three files in ``folder`` (the formats of ``make_synthetic_xroom``)."""
    rng = np.random.default_rng([seed, p, s, 7])
    me = person(seed, p)
    events, spans = session_events(rng, levels, me["mix"])
    duration = events[-1][0] + 5.0
    tm = np.arange(int(duration * HZ) + 1) / HZ
    lat = latents(rng, tm, spans)
    vr, accel, motion = body(rng, me, lat, tm, spans)
    ppg, hr = cardiac(rng, me, lat[:, 0], lat[:, 1], tm, motion)
    sig = {"t": tm, "gsr": skin_conductance(rng, me, lat[:, 0], tm), "ppg": ppg, "hr": hr, "accel": accel,
           "vr": vr}
    return formats.write_files(folder, rng, p, s, events, sig, duration, variant, shimmer_hz, vr_hz)


def generate(out_dir: str | Path, participants: int = 8, sessions: int = 2, levels: int = 10, seed: int = 0,
             variants: bool = True) -> Path:
    """Write the whole dataset; returns ``out_dir``."""
    return formats.generate(out_dir, participants, sessions, levels, seed, variants,
                            session_writer=write_session)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out-dir", required=True, help="dataset root to write (XRoom/<participant>/...)")
    ap.add_argument("--participants", type=int, default=8)
    ap.add_argument("--sessions", type=int, default=2)
    ap.add_argument("--levels", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-variants", action="store_true", help="every session in the standard format")
    args = ap.parse_args(argv)
    if min(args.participants, args.sessions, args.levels) < 1:
        ap.error("--participants, --sessions and --levels must be >= 1")
    generate(args.out_dir, args.participants, args.sessions, args.levels, args.seed, not args.no_variants)
    print(f"wrote {args.participants} participants x {args.sessions} sessions to {args.out_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
