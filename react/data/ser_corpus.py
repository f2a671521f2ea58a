"""Speech-emotion corpora (docs/data.md): RAVDESS, CREMA-D and MUSAN readers, emotion
subsets, speaker-independent splits and k-fold by actor.

Every utterance is described by an :class:`Utterance` whose ``emotion`` is a canonical name from
:data:`EMOTIONS`, so that datasets with different codes share one label space. Actors are
namespaced by dataset (``ravdess:01``, ``cremad:1001``) so that no two datasets share an actor id.
"""

from __future__ import annotations

import csv
import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from react.data.audio import load_audio
from react.errors import LayoutError

EMOTIONS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
RAVDESS_EMOTION = {f"{i + 1:02d}": name for i, name in enumerate(EMOTIONS)}
CREMAD_EMOTION = {"NEU": "neutral", "HAP": "happy", "SAD": "sad", "ANG": "angry", "FEA": "fearful",
                  "DIS": "disgust"}
CREMAD_LEVELS = ("LO", "MD", "HI", "XX")
SUBSETS = {
    "all8": EMOTIONS,
    "basic6": ("neutral", "happy", "sad", "angry", "fearful", "surprised"),
    "basic4": ("neutral", "happy", "sad", "angry"),
    "cremad6": ("neutral", "happy", "sad", "angry", "fearful", "disgust"),
}
SEXES = ("male", "female")
MUSAN_KINDS = ("noise", "speech", "music")

_RAVDESS_RE = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")
_CREMAD_RE = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")


class CorpusError(LayoutError):
    """A corpus file or folder that does not have the expected name or content (a ``LayoutError``,
    so that entry points report it as a data error)."""


@dataclass(frozen=True)
class Utterance:
    """One labelled recording."""

    path: str
    dataset: str  # ravdess | cremad
    actor: str  # dataset-namespaced, e.g. "ravdess:01"
    sex: str  # male | female | unknown
    emotion: str  # canonical name from EMOTIONS
    intensity: str  # RAVDESS 01/02, CREMA-D LO/MD/HI/XX


def parse_ravdess_name(path: str | os.PathLike) -> Utterance:
    """Parse ``MM-VV-EE-II-SS-RR-AA.wav``; raise :class:`CorpusError` naming the bad field."""
    path = Path(path)
    m = _RAVDESS_RE.match(path.stem)
    if m is None or path.suffix.lower() != ".wav":
        raise CorpusError(f"{path}: not a RAVDESS name MM-VV-EE-II-SS-RR-AA.wav (7 two-digit fields)")
    modality, channel, emotion, intensity, statement, repetition, actor = m.groups()
    checks = [("modality", modality, ("01", "02", "03")), ("vocal channel", channel, ("01", "02")),
              ("emotion", emotion, tuple(RAVDESS_EMOTION)), ("intensity", intensity, ("01", "02")),
              ("statement", statement, ("01", "02")), ("repetition", repetition, ("01", "02"))]
    for field_name, value, valid in checks:
        if value not in valid:
            raise CorpusError(f"{path}: {field_name} code '{value}' not in {', '.join(valid)}")
    if not 1 <= int(actor) <= 99:
        raise CorpusError(f"{path}: actor code '{actor}' must be 01..99")
    return Utterance(str(path), "ravdess", f"ravdess:{actor}", "male" if int(actor) % 2 else "female",
                     RAVDESS_EMOTION[emotion], intensity)


def parse_cremad_name(path: str | os.PathLike, sex_by_actor: dict[str, str] | None = None) -> Utterance:
    """Parse ``ActorID_Sentence_Emotion_Level.wav`` (e.g. ``1001_DFA_ANG_XX.wav``)."""
    path = Path(path)
    m = _CREMAD_RE.match(path.stem)
    if m is None or path.suffix.lower() != ".wav":
        raise CorpusError(f"{path}: not a CREMA-D name ActorID_Sentence_Emotion_Level.wav "
                          "(e.g. 1001_DFA_ANG_XX.wav)")
    actor, _sentence, emotion, level = m.groups()
    if emotion not in CREMAD_EMOTION:
        raise CorpusError(f"{path}: emotion '{emotion}' not in {', '.join(CREMAD_EMOTION)}")
    if level not in CREMAD_LEVELS:
        raise CorpusError(f"{path}: level '{level}' not in {', '.join(CREMAD_LEVELS)}")
    sex = (sex_by_actor or {}).get(actor, "unknown")
    return Utterance(str(path), "cremad", f"cremad:{actor}", sex, CREMAD_EMOTION[emotion], level)


def read_cremad_demographics(path: str | os.PathLike) -> dict[str, str]:
    """Actor id -> ``male``/``female`` from CREMA-D's demographics CSV (columns ActorID, Sex)."""
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"{path}: CREMA-D demographics CSV not found")
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or not {"ActorID", "Sex"} <= set(rows[0]):
        raise CorpusError(f"{path}: expected columns ActorID and Sex")
    sexes = {}
    for lineno, row in enumerate(rows, start=2):
        sex = row["Sex"].strip().lower()
        if sex not in SEXES:
            raise CorpusError(f"{path}:{lineno}: Sex '{row['Sex']}' is not Male or Female")
        sexes[row["ActorID"].strip()] = sex
    return sexes


def _collect(files: list[Path], parse) -> list[Utterance]:
    """Parse every file; list all malformed names in one error."""
    utterances, errors = [], []
    for f in files:
        try:
            utterances.append(parse(f))
        except CorpusError as err:
            errors.append(str(err))
    if errors:
        raise CorpusError(f"{len(errors)} malformed file name(s):\n  " + "\n  ".join(errors))
    return utterances


def scan_ravdess(root: str | os.PathLike, include_song: bool = False) -> list[Utterance]:
    """All wavs under ``root/Actor_XX/``; the actor in each name must match its folder."""
    root = Path(root)
    folders = sorted(p for p in root.glob("Actor_*") if p.is_dir()) if root.is_dir() else []
    if not folders:
        raise CorpusError(f"{root}: no RAVDESS Actor_XX folders found")
    utterances = _collect(sorted(f for d in folders for f in d.glob("*.wav")), parse_ravdess_name)
    for u in utterances:
        folder = Path(u.path).parent.name
        if folder != f"Actor_{u.actor.split(':')[1]}":
            raise CorpusError(f"{u.path}: actor code does not match folder {folder}")
    if not include_song:
        utterances = [u for u in utterances if Path(u.path).stem.split("-")[1] == "01"]
    if not utterances:
        raise CorpusError(f"{root}: no RAVDESS speech wav files")
    return utterances


def scan_cremad(root: str | os.PathLike, demographics: str | os.PathLike | None = None) -> list[Utterance]:
    """All ``*.wav`` in ``root`` (CREMA-D AudioWAV); sex from ``demographics`` when given."""
    root = Path(root)
    files = sorted(root.glob("*.wav")) if root.is_dir() else []
    if not files:
        raise CorpusError(f"{root}: no CREMA-D wav files found")
    sexes = read_cremad_demographics(demographics) if demographics else None
    return _collect(files, lambda f: parse_cremad_name(f, sexes))


def scan_noise_dir(root: str | os.PathLike) -> list[str]:
    """Wav files of a MUSAN-layout folder (``noise/``, ``speech/``, ``music/``, searched recursively)."""
    root = Path(root)
    kinds = [root / k for k in MUSAN_KINDS if (root / k).is_dir()]
    if not kinds:
        raise CorpusError(f"{root}: no MUSAN subfolder ({', '.join(MUSAN_KINDS)}) found")
    files = sorted(str(f) for k in kinds for f in k.rglob("*.wav"))
    if not files:
        raise CorpusError(f"{root}: MUSAN subfolders hold no wav files")
    return files


def label_space(subset: str) -> tuple[str, ...]:
    """Class names of an emotion subset (``all8``, ``basic6``, ``basic4``, ``cremad6``)."""
    if subset not in SUBSETS:
        raise CorpusError(f"unknown emotion subset '{subset}'. Valid: {', '.join(SUBSETS)}")
    return SUBSETS[subset]


def select_emotions(utterances: list[Utterance], classes: tuple[str, ...]) -> list[Utterance]:
    """Keep the utterances whose emotion is in ``classes``; error on a class left without data."""
    kept = [u for u in utterances if u.emotion in classes]
    missing = [c for c in classes if not any(u.emotion == c for u in kept)]
    if missing:
        raise CorpusError(f"emotion(s) {', '.join(missing)} have no utterances in the selected datasets; "
                          "pick a subset they provide")
    return kept


def _sex_groups(actors: list[str], sex_of: dict[str, str], rng: np.random.Generator) -> list[list[str]]:
    """Actors shuffled within sex groups, so that each split gets a share of each sex."""
    groups = []
    for sex in (*SEXES, "unknown"):
        group = sorted(a for a in actors if sex_of[a] == sex)
        rng.shuffle(group)
        if group:
            groups.append(group)
    return groups


def _take(groups: list[list[str]], fraction: float) -> tuple[list[str], list[list[str]]]:
    """Take ``round(fraction * n)`` actors, spread over the groups proportionally (at least one if > 0)."""
    total = sum(len(g) for g in groups)
    want = max(1, round(fraction * total)) if fraction > 0 else 0
    shares = np.array([len(g) / total * want for g in groups])
    counts = np.floor(shares).astype(int)
    for i in np.argsort(counts - shares)[: want - counts.sum()]:
        counts[i] += 1
    taken = [a for g, c in zip(groups, counts) for a in g[:c]]
    return taken, [g[c:] for g, c in zip(groups, counts)]


def speaker_split(utterances: list[Utterance], val_fraction: float, test_fraction: float, seed: int,
                  kfold: int = 0, fold: int = 0) -> dict[str, list[str]]:
    """Actor lists ``{"train", "val", "test"}`` of one dataset, disjoint, sex-balanced, seeded.

    With ``kfold > 1`` the actors are dealt into ``kfold`` sex-balanced folds; fold ``fold`` is the
    test set and ``val_fraction`` of all actors is drawn from the rest for validation.
    """
    sex_of = {u.actor: u.sex for u in utterances}
    actors = sorted(sex_of)
    rng = np.random.default_rng(seed)
    groups = _sex_groups(actors, sex_of, rng)
    if kfold > 1:
        if not 0 <= fold < kfold:
            raise CorpusError(f"fold {fold} out of range for kfold={kfold}")
        if len(actors) < kfold:
            raise CorpusError(f"kfold={kfold} needs at least {kfold} actors, have {len(actors)}")
        dealt = [a for g in groups for a in g]  # round-robin over the sex-ordered list
        test = dealt[fold::kfold]
        rest = [[a for a in g if a not in test] for g in groups]
        val, rest = _take(rest, val_fraction * len(actors) / max(1, len(actors) - len(test)))
    else:
        test, rest = _take(groups, test_fraction)
        remaining = sum(len(g) for g in rest)
        val, rest = _take(rest, val_fraction * len(actors) / max(1, remaining)) if remaining else ([], rest)
    train = [a for g in rest for a in g]
    if not train:
        raise CorpusError(f"{len(actors)} actors are too few for val={val_fraction}, test={test_fraction}")
    return {"train": sorted(train), "val": sorted(val), "test": sorted(test)}


def enrolment_split(utterances: list[Utterance], n: int, seed: int, emotion: str = ""
                    ) -> tuple[dict[str, list[Utterance]], list[Utterance]]:
    """The speaker-adapted protocol's enrolment: for every actor, ``n`` of its utterances (of
    ``emotion`` only, when given) drawn at random with a generator seeded by ``seed`` and the
    actor's name (so one actor's draw does not depend on the others); returns actor -> enrolment
    utterances, and the remaining utterances (the ones that may be evaluated), in input order."""
    if n < 1:
        raise CorpusError(f"data.enrol_per_speaker={n}: the speaker-adapted protocol needs at least one "
                          "enrolment utterance per speaker")
    by_actor: dict[str, list[Utterance]] = {}
    for u in utterances:
        if not emotion or u.emotion == emotion:
            by_actor.setdefault(u.actor, []).append(u)
    actors = sorted({u.actor for u in utterances})
    enrol = {}
    for actor in actors:
        candidates = sorted(by_actor.get(actor, []), key=lambda u: u.path)
        if len(candidates) < n:
            kind = f"{emotion} utterances" if emotion else "utterances"
            raise CorpusError(f"actor {actor} has {len(candidates)} {kind}, fewer than the {n} enrolment "
                              "recordings asked for (data.enrol_per_speaker)")
        rng = np.random.default_rng([seed, zlib.crc32(actor.encode())])
        enrol[actor] = [candidates[i] for i in sorted(rng.choice(len(candidates), n, replace=False))]
    chosen = {u.path for us in enrol.values() for u in us}
    return enrol, [u for u in utterances if u.path not in chosen]


class AudioCache:
    """Decoded audio kept in memory: each file is read and resampled once."""

    def __init__(self, sample_rate: int, enabled: bool = True):
        self.sample_rate = sample_rate
        self.enabled = enabled
        self._store: dict[str, np.ndarray] = {}

    def __call__(self, path: str) -> np.ndarray:
        wave = self._store.get(path)
        if wave is None:
            wave = load_audio(path, self.sample_rate)
            if self.enabled:
                self._store[path] = wave
        return wave
