"""Speech-emotion corpora: name parsing, subsets, speaker-independent splits, k-fold, audio loading."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from react.data.audio import AudioError, load_audio
from react.data.ser_corpus import (
    CorpusError,
    Utterance,
    label_space,
    parse_cremad_name,
    parse_ravdess_name,
    read_cremad_demographics,
    scan_cremad,
    scan_noise_dir,
    scan_ravdess,
    select_emotions,
    speaker_split,
)


def test_parse_ravdess_name():
    u = parse_ravdess_name("/d/Actor_07/03-01-05-02-01-02-07.wav")
    assert (u.dataset, u.actor, u.sex, u.emotion, u.intensity) == (
        "ravdess", "ravdess:07", "male", "angry", "02")
    assert parse_ravdess_name("03-02-08-01-02-01-12.wav").sex == "female"
    assert parse_ravdess_name("03-01-01-01-01-01-12.wav").emotion == "neutral"


@pytest.mark.parametrize("name, problem", [
    ("03-01-05-02-01-02.wav", "7 two-digit fields"),
    ("03-01-5-02-01-02-07.wav", "7 two-digit fields"),
    ("03-01-09-02-01-02-07.wav", "emotion code '09'"),
    ("03-03-05-02-01-02-07.wav", "vocal channel code '03'"),
    ("03-01-05-03-01-02-07.wav", "intensity code '03'"),
    ("03-01-05-02-01-02-00.wav", "actor code '00'"),
    ("03-01-05-02-01-02-07.mp3", "not a RAVDESS name"),
])
def test_parse_ravdess_name_rejects(name, problem):
    with pytest.raises(CorpusError, match=problem) as err:
        parse_ravdess_name(name)
    assert name in str(err.value)


def test_parse_cremad_name_and_demographics(tmp_path):
    csv = tmp_path / "VideoDemographics.csv"
    csv.write_text("ActorID,Age,Sex,Race,Ethnicity\n1001,51,Male,Caucasian,Not Hispanic\n"
                   "1002,21,Female,Caucasian,Not Hispanic\n")
    sexes = read_cremad_demographics(csv)
    assert sexes == {"1001": "male", "1002": "female"}
    u = parse_cremad_name("x/1002_DFA_FEA_HI.wav", sexes)
    assert (u.actor, u.sex, u.emotion, u.intensity) == ("cremad:1002", "female", "fearful", "HI")
    assert parse_cremad_name("1003_IEO_NEU_XX.wav").sex == "unknown"
    for bad, problem in [("1001_DFA_BOR_XX.wav", "emotion 'BOR'"), ("1001_DFA_ANG_ZZ.wav", "level 'ZZ'"),
                         ("101_DFA_ANG_XX.wav", "not a CREMA-D name")]:
        with pytest.raises(CorpusError, match=problem):
            parse_cremad_name(bad)
    (tmp_path / "bad.csv").write_text("ActorID,Sex\n1001,Robot\n")
    with pytest.raises(CorpusError, match="bad.csv:2: Sex 'Robot'"):
        read_cremad_demographics(tmp_path / "bad.csv")


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros(160, dtype=np.float32), 16000)
    return path


def test_scan_ravdess_lists_every_malformed_name(tmp_path):
    _touch(tmp_path / "Actor_01" / "03-01-01-01-01-01-01.wav")
    _touch(tmp_path / "Actor_01" / "03-02-03-01-01-01-01.wav")  # song
    assert [u.emotion for u in scan_ravdess(tmp_path)] == ["neutral"]
    assert len(scan_ravdess(tmp_path, include_song=True)) == 2
    _touch(tmp_path / "Actor_02" / "oops.wav")
    _touch(tmp_path / "Actor_02" / "03-01-99-01-01-01-02.wav")
    with pytest.raises(CorpusError, match="2 malformed") as err:
        scan_ravdess(tmp_path)
    assert "oops.wav" in str(err.value) and "emotion code '99'" in str(err.value)


def test_scan_ravdess_actor_must_match_folder(tmp_path):
    _touch(tmp_path / "Actor_01" / "03-01-01-01-01-01-02.wav")
    with pytest.raises(CorpusError, match="does not match folder Actor_01"):
        scan_ravdess(tmp_path)
    with pytest.raises(CorpusError, match="no RAVDESS Actor_XX folders"):
        scan_ravdess(tmp_path / "missing")


def test_scan_cremad_and_noise_dir(tmp_path):
    _touch(tmp_path / "cremad" / "1001_DFA_ANG_XX.wav")
    _touch(tmp_path / "cremad" / "1002_DFA_SAD_LO.wav")
    assert [u.emotion for u in scan_cremad(tmp_path / "cremad")] == ["angry", "sad"]
    with pytest.raises(CorpusError, match="no MUSAN subfolder"):
        scan_noise_dir(tmp_path)
    _touch(tmp_path / "musan" / "noise" / "free-sound" / "n1.wav")
    _touch(tmp_path / "musan" / "music" / "m1.wav")
    assert [Path(f).name for f in scan_noise_dir(tmp_path / "musan")] == ["m1.wav", "n1.wav"]  # sorted paths


def test_subsets_and_one_label_space():
    assert label_space("all8") == ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust",
                                   "surprised")
    assert label_space("basic6") == ("neutral", "happy", "sad", "angry", "fearful", "surprised")
    assert label_space("basic4") == ("neutral", "happy", "sad", "angry")
    assert label_space("cremad6") == ("neutral", "happy", "sad", "angry", "fearful", "disgust")
    with pytest.raises(CorpusError, match="unknown emotion subset 'all9'"):
        label_space("all9")
    ravdess = [parse_ravdess_name(f"03-01-{e:02d}-01-01-01-01.wav") for e in range(1, 9)]
    cremad = [parse_cremad_name(f"1001_DFA_{e}_XX.wav") for e in ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")]
    basic4 = select_emotions(ravdess + cremad, label_space("basic4"))
    assert sorted((u.dataset, u.emotion) for u in basic4) == sorted(
        [(d, e) for d in ("ravdess", "cremad") for e in ("neutral", "happy", "sad", "angry")])
    assert len(select_emotions(ravdess + cremad, label_space("all8"))) == 14
    with pytest.raises(CorpusError, match="calm, surprised have no utterances"):
        select_emotions(cremad, label_space("all8"))


def _corpus(n_actors: int, prefix: str = "ravdess") -> list[Utterance]:
    return [Utterance(f"{a}-{e}.wav", prefix, f"{prefix}:{a:02d}", "male" if a % 2 else "female", e, "01")
            for a in range(1, n_actors + 1) for e in ("happy", "sad")]


def test_speaker_split_disjoint_balanced_seeded():
    utterances = _corpus(24)
    split = speaker_split(utterances, 0.15, 0.15, seed=3)
    sets = {k: set(v) for k, v in split.items()}
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        assert not sets[a] & sets[b]
    assert sets["train"] | sets["val"] | sets["test"] == {u.actor for u in utterances}
    assert (len(sets["train"]), len(sets["val"]), len(sets["test"])) == (16, 4, 4)
    for name in ("val", "test"):  # two of each sex
        assert sum(int(a.split(":")[1]) % 2 for a in sets[name]) == 2
    assert speaker_split(utterances, 0.15, 0.15, seed=3) == split
    assert speaker_split(utterances, 0.15, 0.15, seed=4) != split
    with pytest.raises(CorpusError, match="too few"):
        speaker_split(_corpus(2), 0.5, 0.5, seed=0)


def test_kfold_by_actor_covers_each_actor_once():
    utterances = _corpus(12)
    folds = [speaker_split(utterances, 0.2, 0.0, seed=1, kfold=4, fold=k) for k in range(4)]
    tested = [a for f in folds for a in f["test"]]
    assert sorted(tested) == sorted({u.actor for u in utterances})
    for f in folds:
        assert len(f["test"]) == 3 and len(f["val"]) == 2 and len(f["train"]) == 7
        assert not set(f["val"]) & set(f["test"]) and not set(f["train"]) & set(f["test"])
    with pytest.raises(CorpusError, match="fold 4 out of range"):
        speaker_split(utterances, 0.2, 0.0, seed=1, kfold=4, fold=4)


def test_load_audio_resamples_and_rejects_bad_files(tmp_path):
    t = np.arange(48000) / 48000
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 440 * t)], 1).astype(np.float32)
    sf.write(tmp_path / "a.wav", stereo * 0.5, 48000)
    wave = load_audio(tmp_path / "a.wav", 16000)
    assert wave.shape == (16000,) and wave.dtype == np.float32
    spectrum = np.abs(np.fft.rfft(wave))
    assert spectrum.argmax() == 440  # 1 Hz bins over one second
    (tmp_path / "broken.wav").write_bytes(b"RIFF....not audio")
    with pytest.raises(AudioError, match="broken.wav: cannot decode"):
        load_audio(tmp_path / "broken.wav", 16000)
