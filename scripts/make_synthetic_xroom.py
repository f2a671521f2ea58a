"""Write synthetic Magic XRoom sessions (docs/tools.md) with a learnable engagement relation.

``<out>/P<n>/data_collection_<SESSION>_{SHIMMER,VR,PROGRESS_EVENT}_.csv`` for N participants x
sessions. Each session is a run of game levels; the state during a level (BORED, ENGAGED,
FRUSTRATED) drives the two modalities differently, as arousal and valence are thought to:

- bio-signals follow *arousal* (BORED low; ENGAGED and FRUSTRATED both high, FRUSTRATED a little
  higher): GSR level and the rate of phasic skin-conductance peaks, heart rate (PPG pulse rate and
  the ``hr`` column). They tell BORED from the rest, but ENGAGED from FRUSTRATED only weakly;
- body tracking follows *agitation* (FRUSTRATED only): fast, jerky head and controller movement
  on top of the slow movement every state has. It tells FRUSTRATED from the rest, but BORED from
  ENGAGED only weakly. Each level also demands its own amount of movement (a factor drawn per
  level, log-normal, ``DEMAND_SD``) that scales all of it, so how much someone moves says little;
  the share of fast movement is the cue. A per-session z-score cannot remove a per-level factor,
  so a classifier that sees only a few levels' labels is easily misled by it.

So each modality alone confuses one pair of states and the two together separate all three. Every
participant has their own GSR level and gain, resting heart rate, PPG offset and amplitude, body
height and how much they move, so absolute levels alone do not give the state on unseen
participants. Each session starts with a resting period (``REST_S``, 45 s, REST state) before the
first level, the calibration period of the ``calibration`` scaler. After most levels a self-report
(or a FEEDBACK_RECEIVED value, a SKIP, a late report, or none) follows as in the real recordings.

With ``--variants`` (default) the sessions cycle through the file-format variants: standard
(header, C# ticks, ``int_timestamp``), no header row, older Shimmer (Unix ms, 1 h behind), VR
format 1.0 (``pposY`` typo), and events with ``updated_timestamp``. Output depends only on the seed;
files are written atomically.

    react data synth-xroom --out-dir data/synthetic_xroom [--participants 8] [--sessions 2]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter1d
from scipy.signal import butter, sosfiltfilt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from react.data.windows import write_csv_atomic  # noqa: E402
from react.data.xroom import LABELS, SHIMMER_CHANNELS, TICKS_AT_UNIX_EPOCH, VR_CHANNELS  # noqa: E402
from react.utils.cli import add_out_dir  # noqa: E402

VARIANTS = ("standard", "no_header", "unix_ms", "vr_v1", "updated_timestamp")
AROUSAL = {"BORED": 0.0, "ENGAGED": 0.85, "FRUSTRATED": 1.0, "REST": 0.3}  # bio-signals
AGITATION = {"BORED": 0.0, "ENGAGED": 0.1, "FRUSTRATED": 1.0, "REST": 0.0}  # body movement
DEMAND_SD = 0.6  # log-sd of the movement demand of a level (one sd: a factor of 1.8 either way)
REST_S = 45.0  # resting calibration period from the scenario start to the first level
MASTER_HZ = 100.0
START = datetime(2024, 1, 15, 9, 0, tzinfo=timezone.utc).timestamp()  # wall-clock seconds


def participant_traits(seed: int, p: int) -> dict:
    """Per-participant physiology and behaviour, fixed across their sessions."""
    rng = np.random.default_rng([seed, p, 999])
    return {"gsr_base": rng.uniform(2.0, 12.0), "gsr_gain": rng.uniform(0.6, 1.4),
            "hr_base": rng.uniform(62.0, 76.0), "hr_gain": rng.uniform(0.8, 1.2),
            "ppg_offset": rng.uniform(1200.0, 2200.0), "ppg_amp": rng.uniform(40.0, 120.0),
            "height": rng.uniform(1.55, 1.90), "move": rng.uniform(0.6, 1.5),
            "heading": rng.uniform(-0.5, 0.5),
            "state_p": rng.dirichlet([4.0, 4.0, 4.0])}


def make_events(rng: np.random.Generator, levels: int, state_p: np.ndarray) -> tuple[list, list]:
    """Event rows ``(t, type, info)`` and level states ``(start, end, state)`` for one session."""
    events = [(1.0, "TELEPORT_IN", "canvas_painter"), (3.0, "SCENARIO_STARTED", "canvas_painter")]
    spans = []
    t, state = 3.0 + REST_S, None
    for i in range(levels):
        if state is None:  # a level without report keeps the state, so a merged interval is one state
            state = LABELS[rng.choice(3, p=state_p)]
        start, end = t, t + rng.uniform(15.0, 35.0)
        fail = rng.random() < {"BORED": 0.2, "ENGAGED": 0.3, "FRUSTRATED": 0.7}[state]
        events += [(start, "LEVEL_STARTED", str(i)),
                   (end, "LEVEL_FAILED" if fail else "LEVEL_COMPLETED", str(i))]
        spans.append((start, end, state))
        kind = rng.choice(["report", "feedback", "skip", "late", "none"], p=[0.75, 0.08, 0.07, 0.05, 0.05])
        report_t = end + (rng.uniform(12.0, 20.0) if kind == "late" else rng.uniform(0.8, 4.0))
        if kind in ("report", "late"):  # one report in ten names a state the body did not show
            said = LABELS[rng.integers(3)] if rng.random() < 0.1 else state
            events.append((report_t, said, str(int(rng.integers(900, 4000)))))
        elif kind == "feedback":
            lo, hi = {"BORED": (0.0, 0.38), "ENGAGED": (0.42, 0.58), "FRUSTRATED": (0.62, 1.0)}[state]
            events.append((report_t, "FEEDBACK_RECEIVED", f"{rng.uniform(lo, hi):.3f}"))
        elif kind == "skip":
            events.append((report_t, "SKIP", str(int(rng.integers(900, 4000)))))
        gap = rng.uniform(12.0, 18.0) if rng.random() < 0.2 else rng.uniform(3.0, 8.0)
        t = max(end, report_t) + gap
        state = state if kind == "none" else None
    events += [(t, "TELEPORT_OUT", "canvas_painter"), (t, "SCENARIO_ENDED", "canvas_painter")]
    return events, spans


def band_noise(rng: np.random.Generator, n: int, lo: float, hi: float, dims: int) -> np.ndarray:
    """Unit-variance noise band-limited to ``[lo, hi]`` Hz on the master grid."""
    sos = butter(2, [lo, hi], btype="band", fs=MASTER_HZ, output="sos")
    out = sosfiltfilt(sos, rng.standard_normal((n, dims)), axis=0)
    return out / out.std(0)


def quaternion(yaw: np.ndarray, pitch: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """(n, 4) x, y, z, w from Euler angles (rad), Unity's Y-up convention."""
    cy, sy, cp, sp, cr, sr = (np.cos(yaw / 2), np.sin(yaw / 2), np.cos(pitch / 2), np.sin(pitch / 2),
                              np.cos(roll / 2), np.sin(roll / 2))
    return np.stack([cy * sp * cr + sy * cp * sr, sy * cp * cr - cy * sp * sr,
                     cy * cp * sr - sy * sp * cr, cy * cp * cr + sy * sp * sr], axis=1)


def span_series(tm: np.ndarray, spans: list, values: list[float], rest: float) -> np.ndarray:
    """``values[i]`` during level ``i``, ``rest`` between levels, smoothed over 1.5 s."""
    series = np.full(len(tm), rest)
    for (start, end, _), value in zip(spans, values):
        series[(tm >= start) & (tm <= end)] = value
    return gaussian_filter1d(series, 1.5 * MASTER_HZ)


def state_series(tm: np.ndarray, spans: list, levels: dict[str, float]) -> np.ndarray:
    """The level of each level's state over time (``REST`` between levels), smoothed over 1.5 s."""
    return span_series(tm, spans, [levels[state] for *_, state in spans], levels["REST"])


def simulate(rng: np.random.Generator, traits: dict, spans: list, duration: float) -> dict[str, np.ndarray]:
    """Latent signals on the master grid: gsr, ppg, hr, accel (3), vr (21)."""
    n = int(duration * MASTER_HZ) + 1
    tm = np.arange(n) / MASTER_HZ
    arousal, agitation = (state_series(tm, spans, levels) for levels in (AROUSAL, AGITATION))
    # skin conductance: tonic level + peaks at an arousal-dependent rate (1 to 10 per minute)
    onsets = rng.random(n) < (1.0 + 9.0 * arousal) / 60.0 / MASTER_HZ
    k = np.arange(int(10 * MASTER_HZ)) / MASTER_HZ
    kernel = (1 - np.exp(-k / 0.7)) * np.exp(-k / 3.0)
    phasic = np.convolve(onsets * rng.uniform(0.2, 0.6, n), kernel / kernel.max())[:n]
    drift = np.cumsum(rng.standard_normal(n)) * 0.004
    gsr = traits["gsr_base"] + traits["gsr_gain"] * (2.0 * arousal + phasic) + drift
    gsr += 0.02 * rng.standard_normal(n)
    # heart: rate follows arousal; PPG is a two-harmonic pulse at that rate
    hr = traits["hr_base"] + traits["hr_gain"] * 20.0 * arousal + 2.0 * band_noise(rng, n, 0.05, 0.3, 1)[:, 0]
    phase = 2 * np.pi * np.cumsum(hr / 60.0) / MASTER_HZ
    pulse = np.sin(phase) + 0.4 * np.sin(2 * phase + 0.6)
    ppg = traits["ppg_offset"] + traits["ppg_amp"] * (pulse + 0.1 * rng.standard_normal(n))
    ppg += 15.0 * band_noise(rng, n, 0.02, 0.2, 1)[:, 0]
    # motion: slow movement of the same energy in every state, plus fast jerky movement with agitation
    jerk = (0.1 + 1.4 * agitation)[:, None]
    demand = span_series(tm, spans, list(np.exp(DEMAND_SD * rng.standard_normal(len(spans)))), 1.0)
    move = (traits["move"] * demand[:, None]
            * (band_noise(rng, n, 0.2, 1.2, 18) + jerk * band_noise(rng, n, 1.5, 4.0, 18)))
    head_pos = np.array([0.0, traits["height"], 0.0]) + 0.03 * move[:, 0:3]
    head_rot = quaternion(traits["heading"] + 0.15 * move[:, 3], 0.1 * move[:, 4], 0.05 * move[:, 5])
    parts = [head_pos, head_rot]
    for side, cols in ((-1, slice(6, 12)), (1, slice(12, 18))):
        m = move[:, cols]
        pos = np.array([0.25 * side, traits["height"] - 0.5, 0.3]) + 0.06 * m[:, 0:3]
        parts += [pos, quaternion(0.3 * m[:, 3], 0.3 * m[:, 4], 0.3 * m[:, 5])]
    vr = np.concatenate(parts, axis=1)
    accel = np.array([0.0, 9.81, 0.0]) + 0.3 * move[:, 0:3] + 0.05 * rng.standard_normal((n, 3))
    return {"gsr": gsr, "ppg": ppg, "hr": hr + rng.standard_normal(n), "accel": accel, "vr": vr, "t": tm}


def sample_times(rng: np.random.Generator, duration: float, hz: float) -> np.ndarray:
    """Sensor sample times with a little jitter, strictly increasing."""
    t = np.arange(0.0, duration, 1.0 / hz)
    return t + rng.uniform(-0.1, 0.1, len(t)) / hz


def ticks(wall: np.ndarray) -> np.ndarray:
    """Wall-clock seconds -> C# ticks (int64)."""
    return TICKS_AT_UNIX_EPOCH + np.round(np.asarray(wall) * 1e7).astype(np.int64)


def write_session(folder: Path, seed: int, p: int, s: int, levels: int = 10, variant: str = "standard",
                  shimmer_hz: float = 50.0, vr_hz: float = 30.0) -> str:
    """Write one session's three files into ``folder``; returns the session id."""
    rng = np.random.default_rng([seed, p, s])
    traits = participant_traits(seed, p)
    events, spans = make_events(rng, levels, traits["state_p"])
    duration = events[-1][0] + 5.0
    sig = simulate(rng, traits, spans, duration)
    return write_files(folder, rng, p, s, events, sig, duration, variant, shimmer_hz, vr_hz)


def write_files(folder: Path, rng: np.random.Generator, p: int, s: int, events: list,
                sig: dict[str, np.ndarray], duration: float, variant: str, shimmer_hz: float,
                vr_hz: float) -> str:
    """The three files of a session in the format ``variant`` from its events and its signals on the
    master grid (``t``, ``accel`` (3), ``gsr``, ``ppg``, ``hr``, ``vr`` (21)); returns the session id."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; valid: {', '.join(VARIANTS)}")
    t0 = START + 86400.0 * p + 7200.0 * s
    session = str(int(ticks(t0)))
    header = variant != "no_header"
    # Shimmer
    ts = sample_times(rng, duration, shimmer_hz)
    utc_ms = np.round((t0 + ts - 3600.0) * 1e3).astype(np.int64)  # the device clock: UTC, 1 h behind
    cols = {"timestamp": utc_ms if variant == "unix_ms" else ticks(t0 + ts)}
    if variant != "unix_ms":
        cols["int_timestamp"] = utc_ms
    acc = [np.interp(ts, sig["t"], sig["accel"][:, j]) for j in range(3)]
    bio = [np.interp(ts, sig["t"], sig[c]) for c in ("gsr", "ppg", "hr")]
    cols.update(zip(SHIMMER_CHANNELS, [*acc, *bio]))
    write_csv_atomic(pd.DataFrame(cols).round(5), folder / f"data_collection_{session}_SHIMMER_.csv", header)
    # VR
    tv = sample_times(rng, duration, vr_hz)
    names = [c.replace("controller_posY", "controller_pposY") if variant == "vr_v1" else c
             for c in VR_CHANNELS]
    vr = {"timestamp": ticks(t0 + tv)}
    vr.update({name: np.interp(tv, sig["t"], sig["vr"][:, j]) for j, name in enumerate(names)})
    write_csv_atomic(pd.DataFrame(vr).round(5), folder / f"data_collection_{session}_VR_.csv", header)
    # events
    te = np.array([e[0] for e in events])
    ev = {"timestamp": ticks(t0 + te), "event_type": [e[1] for e in events], "info": [e[2] for e in events]}
    if variant == "updated_timestamp":
        ev["updated_timestamp"] = [datetime.fromtimestamp(t0 + x, tz=timezone.utc)
                                   .strftime("%Y-%m-%d %H:%M:%S.%f") for x in te]
    write_csv_atomic(pd.DataFrame(ev), folder / f"data_collection_{session}_PROGRESS_EVENT_.csv", header)
    return session


def generate(out_dir: str | Path, participants: int = 8, sessions: int = 2, levels: int = 10, seed: int = 0,
             variants: bool = True, shimmer_hz: float = 50.0, vr_hz: float = 30.0,
             session_writer: Callable[..., str] = write_session) -> Path:
    """Write the whole dataset with ``session_writer`` (this generator's, or a variant's); returns
    ``out_dir``."""
    out = Path(out_dir)
    for p in range(1, participants + 1):
        for s in range(sessions):
            variant = VARIANTS[((p - 1) * sessions + s) % len(VARIANTS)] if variants else "standard"
            session_writer(out / f"P{p}", seed, p, s, levels, variant, shimmer_hz, vr_hz)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="react data synth-xroom", description=__doc__.split("\n\n")[0])
    add_out_dir(ap, required=True, help="dataset root to write (XRoom/<participant>/...)")
    ap.add_argument("--participants", type=int, default=8)
    ap.add_argument("--sessions", type=int, default=2)
    ap.add_argument("--levels", type=int, default=10, help="game levels per session (about 30 s each)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shimmer-hz", type=float, default=50.0)
    ap.add_argument("--vr-hz", type=float, default=30.0)
    ap.add_argument("--no-variants", action="store_true", help="write every session in the standard format")
    args = ap.parse_args(argv)
    if min(args.participants, args.sessions, args.levels) < 1:
        ap.error("--participants, --sessions and --levels must be >= 1")
    out = generate(args.out_dir, args.participants, args.sessions, args.levels, args.seed,
                   not args.no_variants, args.shimmer_hz, args.vr_hz)
    print(f"wrote {args.participants} participants x {args.sessions} sessions to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
