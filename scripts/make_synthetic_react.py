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
appropriateness matrix (the rule of ``react.data.matrices emotion``: the 15 % closest pairs of real
reactions) groups reactions with reactions, and a speaker's partner reacts in the other direction.

    python scripts/make_synthetic_react.py --out data/demo --pairs 8 [--frames 751] [--seed 0]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor
from fractions import Fraction
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter1d

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from react.data import react_layout as L  # noqa: E402
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


def write_video(path: Path, frames: np.ndarray) -> None:
    """Encode frames as a 25 fps H.264 mp4 (temp file, then rename)."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.mp4")
    with av.open(str(tmp), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(L.FPS))
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "18"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    tmp.replace(path)


def write_png_folder(path: Path, frames: np.ndarray) -> None:
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
                     sr: int = L.AUDIO_SAMPLE_RATE) -> np.ndarray:
    """A voiced signal whose pitch follows arousal and loudness follows valence/smile."""
    n = int(round(z.shape[0] / L.FPS * sr))
    t_frames = np.arange(z.shape[0]) / L.FPS
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
    jobs = [(out, split, clip, latents[clip], person_traits[clip.rsplit("/", 1)[0]], png, (seed, split_id, i))
            for i, clip in enumerate(clips)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        list(progress(pool.map(write_media, *zip(*jobs)), total=len(jobs), desc=f"{split} media",
                  unit="clip", leave=False))


def write_media(out: Path, split: str, clip: str, latent: np.ndarray, traits: tuple, png: bool,
                seed: tuple[int, int, int]) -> None:
    """Write one person-clip's video (mp4 or png folder), 44.1 kHz wav and 3DMM coefficients."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    _, tone, pitch, _ = traits
    video = render_face(latent, tone)
    target = Path(out) / split / "Video_files" / clip
    if png:
        write_png_folder(target, video)
    else:
        write_video(target.with_name(target.name + ".mp4"), video)
    wav = L.audio_path(out, split, clip)
    wav.parent.mkdir(parents=True, exist_ok=True)
    tmp = wav.with_name(wav.name + ".tmp.wav")
    sf.write(tmp, synthesize_voice(latent, pitch, rng), L.AUDIO_SAMPLE_RATE, subtype="PCM_16")
    tmp.replace(wav)
    face3d = L.face3d_path(out, split, clip)
    face3d.parent.mkdir(parents=True, exist_ok=True)
    z = latent[: L.NUM_FRAMES]
    expression = np.tanh(z @ rng.normal(0, 0.5, (LATENT, 52)))
    np.save(face3d, np.concatenate([expression, 0.05 * z, np.zeros((len(z), 3))], 1).astype(np.float32))


def generate(out_dir: str | Path, pairs: int = 6, frames: int = L.NUM_VIDEO_FRAMES, seed: int = 0,
             media: bool = True, png: bool = False, eval_pairs: int | None = None,
             workers: int = 2) -> Path:
    """Write train/val/test splits under ``out_dir``; ``pairs`` train rows, ``eval_pairs`` val/test rows."""
    if frames <= L.NUM_FRAMES:
        raise ValueError(f"frames must exceed {L.NUM_FRAMES} (Emotion rows), got {frames}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / COMPLETE).unlink(missing_ok=True)
    rng = np.random.default_rng(seed)
    prototypes = np.stack([1.2 * smooth_noise(rng, frames, sigma=15) for _ in range(SCENARIOS)])
    eval_pairs = eval_pairs if eval_pairs is not None else max(2, (pairs + 1) // 2)
    traits: dict = {}
    for split, n in (("train", pairs), ("val", eval_pairs), ("test", eval_pairs)):
        make_split(out, split, n, frames, rng, prototypes, media, png, traits, seed, workers)
    (out / COMPLETE).write_text(f"pairs={pairs} eval_pairs={eval_pairs} frames={frames} seed={seed} "
                                f"media={media} png={png}\n")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="dataset root to write")
    parser.add_argument("--pairs", type=int, default=6, help="dyad rows in train.csv")
    parser.add_argument("--eval-pairs", type=int, default=None, help="rows in val/test (default pairs/2)")
    parser.add_argument("--frames", type=int, default=L.NUM_VIDEO_FRAMES, help="video frames per clip")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-media", action="store_true", help="skip mp4/wav/3DMM (CSVs and matrices only)")
    parser.add_argument("--png", action="store_true", help="REACT 2023 form: png folders instead of mp4")
    parser.add_argument("--workers", type=int, default=2, help="processes writing media")
    args = parser.parse_args(argv)
    out = generate(args.out, args.pairs, args.frames, args.seed, not args.no_media, args.png,
                   args.eval_pairs, args.workers)
    print(f"wrote synthetic REACT dataset to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
