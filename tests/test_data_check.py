"""The layout checker finds each kind of planted defect, and a complete data set passes."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from react.reaction.data import check as C
from react.reaction.data import mars_layout as M
from react.reaction.data import matrices
from react.reaction.data import react_layout as L
from tests.helpers.check_data import MARS_CLIPS, mars_set, react_set, write_video
from tests.helpers.deploy_data import write_truncated_clip

NOXI = "NoXI/000_2016-03-25_Paris"


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    return react_set(tmp_path_factory.mktemp("react") / "data")


@pytest.fixture
def data(clean, tmp_path) -> Path:
    return Path(shutil.copytree(clean, tmp_path / "data"))


def problems(data_dir: Path, release: str | None = None) -> dict[str, list[str]]:
    report = C.check(data_dir, release, workers=2)
    return {kind: found for kind, found in report.problems.items() if found}


def test_clean_set_exits_0(clean, capsys):
    assert C.main(["--data-dir", str(clean)]) == 0
    out = capsys.readouterr().out
    assert "RESULT: COMPLETE (exit 0)" in out and "release  : 2024" in out
    assert "split    : train 4 rows (8 clips)" in out and "numpy " in out


def test_clean_set_with_dataset_wide_matrix_exits_0(data):
    assert matrices.main(["assemble", "--data-dir", str(data)]) == 0
    assert problems(data) == {}


def test_missing_directory_exits_2(tmp_path, capsys):
    assert C.main(["--data-dir", str(tmp_path / "nowhere")]) == 2
    assert "no such directory" in capsys.readouterr().err


def test_missing_file(data, capsys):
    (data / f"train/Audio_files/{NOXI}/Expert_video/2.wav").unlink()
    (data / "neighbour_emotion_test.npy").unlink()
    assert problems(data) == {"missing": [f"train/Audio_files/{NOXI}/Expert_video/2.wav",
                                          "neighbour_emotion_test.npy"]}
    assert C.main(["--data-dir", str(data)]) == 1
    assert "RESULT: INCOMPLETE (exit 1) - 2 problem(s): missing 2" in capsys.readouterr().out


def test_extra_file(data):
    extra = data / f"val/Video_files/{NOXI.replace('000', '100')}/Expert_video/7.mp4"
    shutil.copyfile(extra.with_name("1.mp4"), extra)
    assert problems(data) == {"extra": [extra.relative_to(data).as_posix()]}


def test_misnamed_files(data):
    # The person folder under Emotion/ not renamed to P1, and a zero-padded wav name.
    emotion = data / f"train/Emotion/{NOXI}/P1/1.csv"
    unmapped = data / f"train/Emotion/{NOXI}/Expert_video/1.csv"
    unmapped.parent.mkdir()
    emotion.rename(unmapped)
    wav = data / "train/Audio_files/RECOLA/group-1/P25/1.wav"
    wav.rename(wav.with_name("01.WAV"))
    found = problems(data)
    assert set(found) == {"misnamed"}
    assert sorted(found["misnamed"]) == [
        "train/Audio_files/RECOLA/group-1/P25/01.WAV: expected train/Audio_files/RECOLA/group-1/P25/1.wav",
        f"train/Emotion/{NOXI}/Expert_video/1.csv: expected train/Emotion/{NOXI}/P1/1.csv"]


def test_wrong_frame_count(data):
    video = data / f"test/Video_files/{NOXI.replace('000', '200')}/Novice_video/1.mp4"
    write_video(video, 700)
    # A REACT 2023 png folder with one frame missing.
    other = data / f"test/Video_files/{NOXI.replace('000', '200')}/Expert_video/1.mp4"
    other.unlink()
    folder = other.with_suffix("")
    folder.mkdir()
    for i in range(1, L.NUM_VIDEO_FRAMES):
        (folder / f"{i}.png").touch()
    assert problems(data) == {"frame_count": [
        f"{folder.relative_to(data).as_posix()}/: 750 png frames, expected 751",
        f"{video.relative_to(data).as_posix()}: 700 frames, expected 751"]}


def test_truncated_video(data):
    video = data / f"test/Video_files/{NOXI.replace('000', '200')}/Novice_video/1.mp4"
    write_truncated_clip(video, 60)
    found = problems(data)["format"]
    assert any(f.startswith(f"{video.relative_to(data).as_posix()}: truncated: its header declares 60 frames")
               for f in found), found


def rewrite_emotion(data: Path, split: str, clip: str, change) -> str:
    path = L.emotion_path(data, split, clip)
    L.write_emotion(path, change(L.read_emotion(path)))
    return path.relative_to(data).as_posix()


def test_wrong_row_count(data):
    rel = rewrite_emotion(data, "val", L.read_split(data, "val").listeners[0], lambda e: e[:700])
    assert problems(data) == {"row_count": [f"{rel}: 700 rows, expected 750"]}


def test_nan_and_wrong_shape_in_emotion_csv(data):
    def nan(e):
        e[10:13, 4] = np.nan
        return e

    rel_nan = rewrite_emotion(data, "train", L.read_split(data, "train").speakers[1], nan)
    rel_shape = rewrite_emotion(data, "train", L.read_split(data, "train").speakers[2], lambda e: e[:, :24])
    assert problems(data) == {"nan": [f"{rel_nan}: 3 NaN/inf value(s)"],
                              "shape": [f"{rel_shape}: shape (750, 24), expected (T, 25)"]}


def test_wrong_matrix_size_and_order(data):
    np.save(data / "neighbour_emotion_val.npy", np.eye(4, dtype=np.float32))
    shifted = np.roll(np.load(data / "neighbour_emotion_train.npy"), 1, axis=0)  # rows out of order
    np.save(data / "neighbour_emotion_train.npy", shifted)
    found = problems(data)
    assert set(found) == {"matrix"} and len(found["matrix"]) == 2
    off = int((np.diag(shifted) == 0).sum())
    assert off > 0 and found["matrix"][0].startswith(
        f"neighbour_emotion_train.npy: {off} clip(s) without their real listener")
    assert "neighbour_emotion_val.npy: matrix is (4, 4)" in found["matrix"][1]
    assert "must be (2, 2)" in found["matrix"][1]


def test_neighbour_matrix_differs_from_dataset_wide_matrix(data):
    assert matrices.main(["assemble", "--data-dir", str(data)]) == 0
    test = np.load(data / "neighbour_emotion_test.npy")
    test[0, 1] = test[1, 0] = 1 - test[0, 1]
    np.save(data / "neighbour_emotion_test.npy", test)
    assert problems(data) == {"matrix": [
        f"neighbour_emotion_test.npy: 2 entries differ from its cut of {L.DATASET_MATRIX} "
        "(order or version mismatch)"]}


def test_clip_without_a_pair(data):
    csv = data / "train.csv"
    lines = csv.read_text().splitlines()
    speaker0, listener0 = lines[1].split(",")[1:]
    speaker1, listener1 = lines[2].split(",")[1:]
    lines[1], lines[2] = f"0,{speaker0},{listener1}", f"1,{speaker1},{listener0}"
    csv.write_text("\n".join(lines) + "\n")
    assert problems(data) == {"unpaired": [
        f"train.csv row 0: {speaker0} is paired with '{listener1}', not the other person of its dyad",
        f"train.csv row 1: {speaker1} is paired with '{listener0}', not the other person of its dyad"]}


def test_malformed_split_row_and_clip_in_two_splits(data):
    val = L.read_split(data, "val")
    with open(data / "test.csv", "a") as f:
        f.write(f"1,{val.speakers[0]},{val.listeners[0]}\n2,only-one-path\n")
    found = problems(data)
    assert found["split"] == [
        "test.csv row 2: expected index,speaker_path,listener_path, got '2,only-one-path'",
        f"test.csv row 1: {val.speakers[0]} is also listed in val.csv",
        f"test.csv row 1: {val.listeners[0]} is also listed in val.csv"]


# ---------------------------------------------------------------------------- MARS (2025)


@pytest.fixture
def mars(tmp_path) -> Path:
    return mars_set(tmp_path / "mars")


def test_mars_clean_set_exits_0(mars, capsys):
    assert C.main(["--data-dir", str(mars)]) == 0
    out = capsys.readouterr().out
    assert "release  : 2025 (MARS layout, detected)" in out
    assert "split    : train 3 speaker/listener pairs in 2 session(s)" in out


def test_mars_clip_without_a_pair(mars):
    stem = MARS_CLIPS["train"]["session1"][1]
    for modality in (M.FACIAL_ATTRIBUTES, "coefficients"):
        M.clip_path(mars, "train", modality, "listener", M.Clip("session1", stem)).unlink()
    assert problems(mars, "2025") == {"unpaired": [
        f"train: speaker session1/{stem} has no listener with the same name"]}


def test_mars_defects(mars):
    stem = MARS_CLIPS["test"]["session4"][0]
    attrs = M.clip_path(mars, "test", M.FACIAL_ATTRIBUTES, "speaker", M.Clip("session4", stem))
    np.save(attrs, np.zeros((100, 24), np.float32))
    listener = attrs.parents[2] / "listener/session4" / f"{stem}.npy"
    values = np.load(listener)
    values[3, 3] = np.inf
    np.save(listener, values)
    val_clip = M.Clip("session3", MARS_CLIPS["val"]["session3"][0])
    coeff = M.clip_path(mars, "val", "coefficients", "speaker", val_clip)
    coeff.rename(coeff.with_suffix(".npz"))
    speakers = mars / "train/facial-attributes/speaker"
    (speakers / "session2").rename(speakers / "Session_02")
    found = problems(mars, "2025")
    assert found["shape"] == [
        f"test/facial-attributes/speaker/session4/{stem}.npy: shape (100, 24), expected (T, 25)"]
    assert found["nan"] == [f"test/facial-attributes/listener/session4/{stem}.npy: 1 NaN/inf value(s)"]
    assert found["misnamed"] == [
        "train/facial-attributes/speaker/Session_02: expected train/facial-attributes/speaker/session2",
        f"{coeff.with_suffix('.npz').relative_to(mars).as_posix()}: expected the extension .npy"]
    session2 = MARS_CLIPS["train"]["session2"][0]
    assert found["missing"] == [f"train/facial-attributes/speaker/session2/{session2}.npy",
                                f"{coeff.relative_to(mars).as_posix()}"]
    assert set(found) == {"shape", "nan", "misnamed", "missing"}


def test_mars_reader_pairs_and_appropriate_reactions(mars):
    pairing = M.pair_clips(mars, "train")
    train = MARS_CLIPS["train"]
    assert [c.stem for c in pairing.pairs] == sorted(train["session1"]) + train["session2"]
    assert pairing.speaker_only == pairing.listener_only == ()
    appropriate = M.appropriate_listeners(pairing.pairs)
    first, second, other = pairing.pairs
    assert appropriate[second] == [second, first] and appropriate[other] == [other]
    values = M.read_facial_attributes(M.clip_path(mars, "train", M.FACIAL_ATTRIBUTES, "speaker", first))
    assert values.dtype == np.float32 and values.ndim == 2 and values.shape[1] == 25
    bad = mars / "bad.npy"
    np.save(bad, np.full((5, 25), np.nan))
    with pytest.raises(L.LayoutError, match="bad.npy: contains 125 NaN/inf"):
        M.read_facial_attributes(bad)
