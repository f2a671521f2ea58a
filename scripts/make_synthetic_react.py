"""Write a synthetic dataset in the exact REACT layout (docs/data.md) with a learnable relation.

Every person-clip has a smooth 3-channel latent affect ``z(t)`` (valence-, arousal- and
smile-like). The speaker's affect is drawn around one of a few *scenario* prototypes. The listener
*reacts* rather than mirrors (:func:`react_to`): after ``REACTION_DELAY`` frames its smile follows
the speaker's valence (so other AUs fire than the speaker's), its own valence is a damped echo,
its arousal sits lower, and each rise of the speaker's arousal sets off a short backchannel burst
(a nod-smile); a per-listener style (expressiveness, valence and arousal offsets) scales it all.
Each person's face (skin colour, mouth opening, brow height) and voice (pitch, loudness) show that
person's own latent, and its Emotion CSV is a fixed non-linear read-out of it with a
person-specific AU bias. So a listener's reaction is predictable from what the speaker's video and
audio show, yet the speaker's own behaviour is not one of its appropriate reactions: the
appropriateness matrix (the rule of ``react.reaction.data.matrices emotion``: the 15 % closest pairs of real
reactions) groups reactions with reactions, and a speaker's partner reacts in the other direction.

    react data synth --out-dir data/demo --pairs 8 [--frames 751] [--seed 0]
    react data synth --layout mars --out-dir data/mars [--sessions 5] [--recordings 4]
        [--min-frames 300] [--max-frames 1500]

``--layout mars`` writes the REACT 2025/2026 layout (docs/data.md) with the same reacting relation:
sessions split 60/20/20 (each person in one session only), clips of varying length at 30 fps.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter1d

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from react.reaction.data import mars_layout as M  # noqa: E402
from react.reaction.data import react_layout as L  # noqa: E402
from react.utils.cli import add_out_dir  # noqa: E402
from react.utils.progress import progress  # noqa: E402

LATENT = 3
SCENARIOS = 4
REACTION_DELAY = 8  # frames between a speaker's change and the listener's reaction
BURST_LEVEL = 0.8  # the speaker's arousal crossing this upwards sets off a backchannel burst
COMPLETE = ".complete"  # written last: a dataset without it was interrupted
RECOLA_PAIRS = (("P25", "P26"), ("P41", "P42"), ("P45", "P46"))

# Fixed read-out from the latent to the 25 facial attributes (same for every person).
_W = np.random.default_rng(1234)
AU_WEIGHTS = _W.normal(0, 1.5, (LATENT, L.NUM_AUS))
VA_WEIGHTS = np.array([[1.0, 0.1], [0.1, 1.0], [0.4, 0.2]])
EXPR_WEIGHTS = _W.normal(0, 1.2, (LATENT, 8))


def smooth_noise(rng: np.random.Generator, frames: int, sigma: float) -> np.ndarray:
    """Unit-variance Gaussian-smoothed noise of shape ``(frames, LATENT)``."""
    x = gaussian_filter1d(rng.normal(size=(frames, LATENT)), sigma, axis=0, mode="wrap")
    return (x - x.mean(0)) / (x.std(0) + 1e-8)


def backchannels(arousal: np.ndarray, width: float = 4.0) -> np.ndarray:
    """Bursts ``(T,)`` peaking at 1 where ``arousal`` rises through :data:`BURST_LEVEL`."""
    onsets = np.zeros(len(arousal))
    onsets[1:] = (arousal[1:] > BURST_LEVEL) & (arousal[:-1] <= BURST_LEVEL)
    return gaussian_filter1d(onsets, width, mode="constant") * np.sqrt(2 * np.pi) * width


def react_to(z_speaker: np.ndarray, style: np.ndarray, own: np.ndarray) -> np.ndarray:
    """The listener's latent ``(T, 3)`` reacting to ``z_speaker``; ``style`` = (expressiveness,
    valence offset, arousal offset), ``own`` the listener's own smooth variation."""
    delayed = np.roll(z_speaker, REACTION_DELAY, axis=0)
    delayed[:REACTION_DELAY] = z_speaker[0]
    valence, arousal, _ = gaussian_filter1d(delayed, 4, axis=0).T
    bursts = backchannels(delayed[:, 1])
    gain, valence_offset, arousal_offset = style
    z = np.stack([0.35 * valence + valence_offset,  # damped valence
                  -0.9 + 0.3 * arousal + 0.8 * bursts + arousal_offset,  # calmer, lifted by bursts
                  gain * (0.9 * valence + 1.5 * bursts)], axis=1)  # smiles at good news and bursts
    return z + 0.15 * own


def latent_to_emotion(z: np.ndarray, au_bias: np.ndarray) -> np.ndarray:
    """Read the 25 facial attributes out of a latent ``(T, 3)``: AUs, valence/arousal, expressions."""
    aus = 1.0 / (1.0 + np.exp(-(z @ AU_WEIGHTS + au_bias)))
    va = np.tanh(z @ VA_WEIGHTS)
    logits = z @ EXPR_WEIGHTS
    expr = np.exp(logits - logits.max(1, keepdims=True))
    expr /= expr.sum(1, keepdims=True)
    return np.concatenate([aus, va, expr], axis=1).astype(np.float32)


def render_face(z: np.ndarray, person_tone: float, size: int = L.VIDEO_SIZE) -> np.ndarray:
    """Frames ``(T, size, size, 3)`` uint8: a face whose colour, mouth and brows follow ``z``."""
    grid = (np.arange(size, dtype=np.float32) + 0.5) / size
    face = ((grid[None, :] - 0.5) / 0.32) ** 2 + ((grid[:, None] - 0.5) / 0.42) ** 2 < 1.0
    valence, arousal, smile = (np.tanh(z[:, i]).astype(np.float32) for i in range(LATENT))
    skin = np.stack([170 + 50 * valence, 130 + 30 * person_tone + 20 * smile, 110 - 30 * valence], -1)
    frames = np.empty((len(z), size, size, 3), np.uint8)
    frames[:] = (60, 70, 80)
    frames[:, face] = np.clip(skin, 0, 255).astype(np.uint8)[:, None, :]
    # Mouth: an ellipse that opens with arousal and widens with the smile, drawn row by row.
    mouth_h, mouth_w = 0.02 + 0.05 * (arousal + 1), 0.10 + 0.05 * (smile + 1)
    rows = 1.0 - ((grid[None, :] - 0.72) / mouth_h[:, None]) ** 2
    half_width = mouth_w[:, None] * np.sqrt(np.clip(rows, 0, None)) * (rows > 0)
    frames[np.abs(grid - 0.5)[None, None, :] < half_width[:, :, None]] = (90, 20, 30)
    # Brows rise with valence.
    brow_rows = np.abs(grid[None, :] - (0.33 - 0.04 * valence)[:, None]) < 0.015
    brow_cols = np.abs(np.abs(grid - 0.5) - 0.13) < 0.07
    frames[brow_rows[:, :, None] & brow_cols[None, None, :]] = (40, 30, 20)
    return frames


def render_chunks(z: np.ndarray, person_tone: float, size: int, chunk: int = 64) -> Iterator[np.ndarray]:
    """:func:`render_face` a few frames at a time (long clips never sit in memory whole)."""
    for start in range(0, len(z), chunk):
        yield from render_face(z[start:start + chunk], person_tone, size)


def write_video(path: Path, frames: Iterable[np.ndarray], fps: int = L.FPS) -> None:
    """Encode frames as an H.264 mp4 at ``fps`` (temp file, then rename)."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.mp4")
    with av.open(str(tmp), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "18"}
        for i, frame in enumerate(frames):
            if i == 0:
                stream.width, stream.height = frame.shape[1], frame.shape[0]
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    tmp.replace(path)


def write_png_folder(path: Path, frames: Iterable[np.ndarray]) -> None:
    """The REACT 2023 form: a folder of ``1.png .. T.png``."""
    from PIL import Image

    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for i, frame in enumerate(frames, start=1):
        Image.fromarray(frame).save(tmp / f"{i}.png")
    shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)


def synthesize_voice(z: np.ndarray, person_pitch: float, rng: np.random.Generator,
                     sr: int = L.AUDIO_SAMPLE_RATE, fps: int = L.FPS) -> np.ndarray:
    """A voiced signal whose pitch follows arousal and loudness follows valence/smile."""
    n = int(round(z.shape[0] / fps * sr))
    t_frames = np.arange(z.shape[0]) / fps
    t = np.arange(n) / sr
    arousal = np.interp(t, t_frames, np.tanh(z[:, 1]))
    energy = np.interp(t, t_frames, 0.5 + 0.25 * (np.tanh(z[:, 0]) + np.tanh(z[:, 2])))
    f0 = person_pitch * 2.0 ** (0.5 * arousal)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    voice = sum(np.sin(h * phase) / h for h in (1, 2, 3, 4))
    syllables = 0.5 + 0.5 * np.sin(2 * np.pi * 4.0 * t + rng.uniform(0, 2 * np.pi)) ** 2
    signal = 0.25 * energy * syllables * voice + 0.003 * rng.normal(size=n)
    return np.clip(signal, -1, 1).astype(np.float32)


def pair_paths(index: int, split: str) -> tuple[str, str]:
    """Speaker and listener clip paths of pair ``index``, alternating NoXI and RECOLA sessions."""
    session, clip = divmod(index, 3)
    offset = {"train": 0, "val": 100, "test": 200}[split]
    if session % 2 == 0:
        group = f"{offset + session:03d}_2016-03-25_Paris"
        return f"NoXI/{group}/Expert_video/{clip + 1}", f"NoXI/{group}/Novice_video/{clip + 1}"
    a, b = RECOLA_PAIRS[(session // 2) % len(RECOLA_PAIRS)]
    group = f"group-{offset + session}"
    return f"RECOLA/{group}/{a}/{clip + 1}", f"RECOLA/{group}/{b}/{clip + 1}"


def appropriateness(reactions: np.ndarray, quantile: float = 0.15) -> np.ndarray:
    """``M[k, j] = 1`` when listener reactions k and j are among the closest pairs (symmetric)."""
    flat = reactions.reshape(len(reactions), -1).astype(np.float64)
    sq = (flat**2).sum(1)
    dist = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * flat @ flat.T, 0) / flat.shape[1])
    off_diag = dist[~np.eye(len(dist), dtype=bool)]
    threshold = np.quantile(off_diag, quantile) if off_diag.size else 0.0
    matrix = dist <= threshold
    np.fill_diagonal(matrix, True)
    return matrix.astype(np.float32)


def new_traits(rng: np.random.Generator) -> tuple:
    """A person's AU bias, skin tone, voice pitch and listening style (see :func:`react_to`)."""
    pitch = rng.choice([110.0, 210.0]) * rng.uniform(0.9, 1.1)
    return (rng.normal(0, 0.7, L.NUM_AUS), rng.uniform(-1, 1), pitch,
            np.array([rng.uniform(0.6, 1.4), rng.normal(0, 0.2), rng.normal(0, 0.2)]))


def make_split(out: Path, split: str, pairs: int, frames: int, rng: np.random.Generator,
               prototypes: np.ndarray, media: bool, png: bool, person_traits: dict, seed: int,
               workers: int) -> None:
    rows = [pair_paths(i, split) for i in range(pairs)]
    latents: dict[str, np.ndarray] = {}
    for speaker, listener in rows:
        for person in (speaker, listener):
            person_traits.setdefault(person.rsplit("/", 1)[0], new_traits(rng))
        scenario = prototypes[rng.integers(len(prototypes))]
        z_speaker = scenario + 0.35 * smooth_noise(rng, frames, sigma=12)
        style = person_traits[listener.rsplit("/", 1)[0]][3]
        latents[speaker] = z_speaker
        latents[listener] = react_to(z_speaker, style, smooth_noise(rng, frames, sigma=10))

    header = "index,speaker_path,listener_path\n"
    body = "".join(f"{i},{s},{l}\n" for i, (s, l) in enumerate(rows))
    (out / f"{split}.csv").write_text(header + body)
    clips = [s for s, _ in rows] + [l for _, l in rows]
    emotions = {}
    for clip in clips:
        person = clip.rsplit("/", 1)[0]
        emotions[clip] = latent_to_emotion(latents[clip][: L.NUM_FRAMES], person_traits[person][0])
        L.write_emotion(L.emotion_path(out, split, clip), emotions[clip])
    n = len(rows)
    reactions = np.stack([emotions[clips[(k + n) % (2 * n)]] for k in range(2 * n)])
    np.save(L.appropriateness_path(out, split), appropriateness(reactions))
    if not media:
        return
    split_id = L.SPLITS.index(split)
    base = out / split / "Video_files"
    write_all_media([Media(base / clip if png else base / f"{clip}.mp4", L.audio_path(out, split, clip),
                           L.face3d_path(out, split, clip), latents[clip],
                           person_traits[clip.rsplit("/", 1)[0]], (seed, split_id, i), png=png)
                     for i, clip in enumerate(clips)], workers, f"{split} media")


@dataclass
class Media:
    """One person-clip's media: where its video, wav and 3DMM coefficients go, and what they show."""

    video: Path  # an mp4, or a png folder (``png``)
    wav: Path
    face3d: Path
    latent: np.ndarray  # (frames, 3)
    traits: tuple
    seed: tuple[int, ...]
    png: bool = False
    fps: int = L.FPS
    size: int = L.VIDEO_SIZE
    face3d_rows: int = L.NUM_FRAMES  # rows of the coefficients (the REACT clips' 750, a MARS clip's all)


def write_all_media(jobs: list[Media], workers: int, desc: str) -> None:
    """:func:`write_media` of every job, in ``workers`` processes."""
    with ProcessPoolExecutor(max_workers=workers) as pool:
        list(progress(pool.map(write_media, jobs), total=len(jobs), desc=desc, unit="clip", leave=False))


def write_media(job: Media) -> None:
    """Write one person-clip's video (mp4 or png folder), 44.1 kHz wav and 3DMM coefficients."""
    import soundfile as sf

    rng = np.random.default_rng(job.seed)
    _, tone, pitch, _ = job.traits
    frames = render_chunks(job.latent, tone, job.size)
    if job.png:
        write_png_folder(job.video, frames)
    else:
        write_video(job.video, frames, job.fps)
    job.wav.parent.mkdir(parents=True, exist_ok=True)
    tmp = job.wav.with_name(job.wav.name + ".tmp.wav")
    voice = synthesize_voice(job.latent, pitch, rng, fps=job.fps)
    sf.write(tmp, voice, L.AUDIO_SAMPLE_RATE, subtype="PCM_16")
    tmp.replace(job.wav)
    job.face3d.parent.mkdir(parents=True, exist_ok=True)
    z = job.latent[: job.face3d_rows]
    expression = np.tanh(z @ rng.normal(0, 0.5, (LATENT, 52)))
    np.save(job.face3d, np.concatenate([expression, 0.05 * z, np.zeros((len(z), 3))], 1).astype(np.float32))


def begin(out_dir: str | Path, seed: int, frames: int) -> tuple[Path, np.random.Generator, np.ndarray]:
    """Create ``out_dir`` (its completion marker removed until the end); the seeded generator and the
    speakers' scenario prototypes ``(SCENARIOS, frames, 3)``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / COMPLETE).unlink(missing_ok=True)
    rng = np.random.default_rng(seed)
    return out, rng, np.stack([1.2 * smooth_noise(rng, frames, sigma=15) for _ in range(SCENARIOS)])


MARS_SPLIT_SHARES = (0.6, 0.2, 0.2)  # sessions per split, as the release (subject-independent)
MARS_VIDEO_SIZE = 384
MARS_MEDIA = ("video-face-crop", "audio", "coefficients")  # the fields of Media, in order


def mars_stem(session: int, recording: int) -> str:
    """A release-like stem, ``Camera-<date>-<start>-<end>`` (times HHMMSS), unique per recording."""
    start = 9 * 3600 + 600 * (session % 48) + 97 * recording
    hhmmss = [f"{t // 3600:02d}{t // 60 % 60:02d}{t % 60:02d}" for t in (start, start - 19)]
    return f"Camera-2024-06-{1 + session // 48 % 28:02d}-{hhmmss[0]}-{hhmmss[1]}"


def mars_split_sessions(sessions: int) -> dict[str, range]:
    """Consecutive session numbers of train, val and test (60/20/20, at least one each)."""
    val = test = max(1, round(sessions * MARS_SPLIT_SHARES[1]))
    train = sessions - val - test
    if train < 1:
        raise ValueError(f"sessions must be at least 3 (one per split), got {sessions}")
    return {"train": range(train), "val": range(train, train + val), "test": range(train + val, sessions)}


def generate_mars(out_dir: str | Path, sessions: int = 5, recordings: int = 4, min_frames: int = 300,
                  max_frames: int = 1500, seed: int = 0, media: bool = True,
                  video_size: int = MARS_VIDEO_SIZE, workers: int = 2) -> Path:
    """Write the REACT 2025/2026 (MARS) layout under ``out_dir``: ``sessions`` sessions split 60/20/20
    by session, each with two people of its own (subject-independent splits) and ``recordings``
    recordings in which one speaks and the other reacts (:func:`react_to`, as in the REACT 2023/2024
    set), ``min_frames..max_frames`` frames at 30 fps each. Files per clip and role:
    ``facial-attributes`` ``.npy`` (T, 25), and with ``media`` ``video-face-crop`` ``.mp4``
    (``video_size`` px), ``audio`` ``.wav`` (44.1 kHz) and ``coefficients`` ``.npy`` (T, 58)."""
    if not 0 < min_frames <= max_frames:
        raise ValueError(f"need 0 < min_frames <= max_frames, got {min_frames} and {max_frames}")
    out, rng, prototypes = begin(out_dir, seed, max_frames)
    jobs: list[Media] = []
    for split, numbers in mars_split_sessions(sessions).items():
        for number in numbers:
            session = f"session{number}"
            people = [new_traits(rng) for _ in range(2)]
            for recording in range(recordings):
                frames = int(rng.integers(min_frames, max_frames + 1))
                start = int(rng.integers(0, max_frames - frames + 1))
                speaker = recording % 2  # the two take turns
                z_speaker = prototypes[rng.integers(SCENARIOS)][start:start + frames]
                z_speaker = z_speaker + 0.35 * smooth_noise(rng, frames, sigma=12)
                z_listener = react_to(z_speaker, people[1 - speaker][3], smooth_noise(rng, frames, sigma=10))
                clip = M.Clip(session, mars_stem(number, recording))
                for r, (z, person) in enumerate(((z_speaker, people[speaker]),
                                                 (z_listener, people[1 - speaker]))):
                    attributes = M.clip_path(out, split, M.FACIAL_ATTRIBUTES, M.ROLES[r], clip)
                    attributes.parent.mkdir(parents=True, exist_ok=True)
                    np.save(attributes, latent_to_emotion(z, person[0]))
                    paths = [M.clip_path(out, split, m, M.ROLES[r], clip) for m in MARS_MEDIA]
                    jobs.append(Media(*paths, z, person, (seed, number, recording, r), fps=M.FPS,
                                      size=video_size, face3d_rows=frames))
    if media:
        write_all_media(jobs, workers, "MARS media")
    (out / COMPLETE).write_text(f"layout=mars sessions={sessions} recordings={recordings} "
                                f"frames={min_frames}..{max_frames} seed={seed} media={media}\n")
    return out


def generate(out_dir: str | Path, pairs: int = 6, frames: int = L.NUM_VIDEO_FRAMES, seed: int = 0,
             media: bool = True, png: bool = False, eval_pairs: int | None = None,
             workers: int = 2) -> Path:
    """Write train/val/test splits under ``out_dir``; ``pairs`` train rows, ``eval_pairs`` val/test rows."""
    if frames <= L.NUM_FRAMES:
        raise ValueError(f"frames must exceed {L.NUM_FRAMES} (Emotion rows), got {frames}")
    out, rng, prototypes = begin(out_dir, seed, frames)
    eval_pairs = eval_pairs if eval_pairs is not None else max(2, (pairs + 1) // 2)
    traits: dict = {}
    for split, n in (("train", pairs), ("val", eval_pairs), ("test", eval_pairs)):
        make_split(out, split, n, frames, rng, prototypes, media, png, traits, seed, workers)
    (out / COMPLETE).write_text(f"pairs={pairs} eval_pairs={eval_pairs} frames={frames} seed={seed} "
                                f"media={media} png={png}\n")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="react data synth", description=__doc__.split("\n")[0])
    add_out_dir(parser, required=True, help="dataset root to write")
    parser.add_argument("--layout", choices=("react", "mars"), default="react",
                        help="react: REACT 2023/2024 (default); mars: REACT 2025/2026 (MARS)")
    parser.add_argument("--pairs", type=int, default=6, help="react: dyad rows in train.csv")
    parser.add_argument("--eval-pairs", type=int, default=None,
                        help="react: rows in val/test (default pairs/2)")
    parser.add_argument("--frames", type=int, default=L.NUM_VIDEO_FRAMES, help="react: video frames per clip")
    parser.add_argument("--sessions", type=int, default=5, help="mars: sessions (split 60/20/20)")
    parser.add_argument("--recordings", type=int, default=4, help="mars: recordings per session")
    parser.add_argument("--min-frames", type=int, default=300, help="mars: shortest clip (30 fps)")
    parser.add_argument("--max-frames", type=int, default=1500, help="mars: longest clip")
    parser.add_argument("--video-size", type=int, default=MARS_VIDEO_SIZE, help="mars: face video size (px)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-media", action="store_true",
                        help="skip videos, audio and 3DMM (facial attributes, split lists and matrices only)")
    parser.add_argument("--png", action="store_true", help="REACT 2023 form: png folders instead of mp4")
    parser.add_argument("--workers", type=int, default=2, help="processes writing media")
    args = parser.parse_args(argv)
    if min(args.pairs, 1 if args.eval_pairs is None else args.eval_pairs, args.sessions, args.recordings) < 1:
        parser.error("--pairs, --eval-pairs, --sessions and --recordings must be >= 1")
    try:
        if args.layout == "mars":
            out = generate_mars(args.out_dir, args.sessions, args.recordings, args.min_frames,
                                args.max_frames, args.seed, not args.no_media, args.video_size, args.workers)
        else:
            out = generate(args.out_dir, args.pairs, args.frames, args.seed, not args.no_media, args.png,
                           args.eval_pairs, args.workers)
    except ValueError as err:  # settings that cannot make a dataset
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote synthetic {'MARS' if args.layout == 'mars' else 'REACT'} dataset to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
