"""The synthetic REACT generator writes the exact layout of docs/data.md with a learnable relation in
which the listener reacts rather than mirrors (copying the speaker is not an appropriate reaction)."""

import sys
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf

from react.reaction.data import react_layout as L

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import make_synthetic_react as gen  # noqa: E402


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return gen.generate(tmp_path_factory.mktemp("react") / "d", pairs=2, eval_pairs=1, seed=3)


def test_layout_files_and_csv(dataset):
    assert (dataset / gen.COMPLETE).is_file() and not list(dataset.rglob("*.tmp*"))
    assert (dataset / "train.csv").read_text().splitlines()[0] == "index,speaker_path,listener_path"
    split = L.read_split(dataset, "train")
    assert len(split) == 4 and split.listener_index(0) == 2 and split.listener_index(3) == 1
    for name in L.SPLITS:
        split = L.read_split(dataset, name)
        for clip in split.clips:
            assert L.video_path(dataset, name, clip).suffix == ".mp4"
            assert L.audio_path(dataset, name, clip).is_file()
            assert np.load(L.face3d_path(dataset, name, clip)).shape == (750, 58)
            assert L.read_emotion(L.emotion_path(dataset, name, clip)).shape == (750, 25)


def test_emotion_csv_header_and_p1_p2_mapping(dataset):
    clip = "NoXI/000_2016-03-25_Paris/Novice_video/1"
    path = L.emotion_path(dataset, "train", clip)
    assert path == dataset / "train/Emotion/NoXI/000_2016-03-25_Paris/P2/1.csv"
    lines = path.read_text().splitlines()
    assert lines[0].split(",") == L.EMOTION_COLUMNS and len(lines) == 751
    assert L.emotion_clip_path("RECOLA/group-1/P25/2") == "RECOLA/group-1/P1/2"
    assert L.emotion_clip_path("RECOLA/group-1/P46/2") == "RECOLA/group-1/P2/2"
    assert L.emotion_clip_path("NoXI/x/Expert_video/3") == "NoXI/x/P1/3"
    assert L.emotion_clip_path("UDIVA/a/b/c/d") == "UDIVA/a/b/c/d"


def test_recola_sessions_use_p1_p2_folders(tmp_path):
    out = gen.generate(tmp_path, pairs=4, eval_pairs=1, media=False)
    split = L.read_split(out, "train")
    assert split.speakers[3] == "RECOLA/group-1/P25/1"
    assert (out / "train/Emotion/RECOLA/group-1/P1/1.csv").is_file()
    assert (out / "train/Emotion/RECOLA/group-1/P2/1.csv").is_file()


def test_appropriateness_matrix(dataset):
    for name in L.SPLITS:
        split = L.read_split(dataset, name)
        m = np.load(L.appropriateness_path(dataset, name))
        assert m.shape == (len(split), len(split)) and set(np.unique(m)) <= {0.0, 1.0}
        assert (m == m.T).all() and (np.diag(m) == 1).all()


def test_video_and_audio_formats(dataset):
    clip = L.read_split(dataset, "val").speakers[0]
    with av.open(str(L.video_path(dataset, "val", clip))) as container:
        stream = container.streams.video[0]
        assert stream.average_rate == 25 and (stream.width, stream.height) == (256, 256)
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 751
    info = sf.info(str(L.audio_path(dataset, "val", clip)))
    assert info.samplerate == 44100 and info.frames == round(751 / 25 * 44100)
    # The face shows the person's own affect: skin redness follows its valence.
    red = np.array([f[100:160, 100:156, 0].mean() for f in frames[:750]])
    valence = L.read_emotion(L.emotion_path(dataset, "val", clip))[:, 15]
    assert np.corrcoef(red, valence)[0, 1] > 0.8


def test_listener_reacts_rather_than_mirrors(tmp_path):
    out = gen.generate(tmp_path, pairs=6, eval_pairs=1, media=False, seed=1)
    split = L.read_split(out, "train")
    emo = L.read_emotions(split)
    n = len(split.speakers)
    speaker_valence = lambda i: emo[i][:, 15]  # noqa: E731
    def corr(a, b, lag):
        return np.corrcoef(a[: 750 - lag], b[lag:])[0, 1]
    # The listener's smile (expressions read out of its smile channel) follows the speaker's valence.
    smiles = [np.abs(np.corrcoef(emo[i + n][:, 17:].T, speaker_valence(i))[-1, :-1]).max() for i in range(n)]
    paired = np.mean([corr(speaker_valence(i), emo[i + n][:, 15], gen.REACTION_DELAY) for i in range(n)])
    unpaired = np.mean([corr(speaker_valence(i), emo[(i + 1) % n + n][:, 15], gen.REACTION_DELAY)
                        for i in range(n)])
    assert paired > 0.5 and paired > unpaired + 0.3 and np.mean(smiles) > 0.5
    # ... but it is calmer and does not copy: the speaker's own behaviour is no appropriate reaction.
    assert emo[n:, :, 16].mean() < emo[:n, :, 16].mean() - 0.3
    matrix = L.read_appropriateness(split)
    assert all(matrix[k, (k + n) % (2 * n)] == 0 for k in range(2 * n))
    mime = [min(np.mean((emo[k] - emo[split.listener_index(j)]) ** 2) for j in np.nonzero(matrix[k])[0])
            for k in range(n)]
    real = [np.mean((emo[k + n] - emo[(k + 1) % n + n]) ** 2) for k in range(n)]
    assert np.mean(mime) > np.mean(real)  # copying the speaker is further off than another listener


def test_backchannel_bursts_follow_rises_of_arousal():
    arousal = np.zeros(200)
    arousal[50:80] = 1.0
    bursts = gen.backchannels(arousal)
    assert bursts.argmax() == 50 and bursts.max() == pytest.approx(1.0, abs=0.02) and bursts[150] < 1e-3


def test_same_seed_same_data(tmp_path):
    a = gen.generate(tmp_path / "a", pairs=1, eval_pairs=1, media=False, seed=5)
    b = gen.generate(tmp_path / "b", pairs=1, eval_pairs=1, media=False, seed=5)
    c = gen.generate(tmp_path / "c", pairs=1, eval_pairs=1, media=False, seed=6)
    clip = "NoXI/000_2016-03-25_Paris/P1/1.csv"
    assert (a / "train/Emotion" / clip).read_text() == (b / "train/Emotion" / clip).read_text()
    assert (a / "train/Emotion" / clip).read_text() != (c / "train/Emotion" / clip).read_text()
    matrix = "neighbour_emotion_test.npy"
    assert np.array_equal(np.load(a / matrix), np.load(b / matrix))


def test_rejects_too_few_frames(tmp_path):
    with pytest.raises(ValueError, match="frames must exceed 750"):
        gen.generate(tmp_path, pairs=1, frames=700)


def test_unreadable_matrix_names_the_file(tmp_path):
    out = gen.generate(tmp_path, pairs=1, eval_pairs=1, media=False)
    split = L.read_split(out, "val")
    L.appropriateness_path(out, "val").write_bytes(b"not a numpy file")
    with pytest.raises(L.LayoutError, match=r"neighbour_emotion_val.npy: not a readable .npy appropr"):
        L.read_appropriateness(split)
    np.save(L.appropriateness_path(out, "val"), np.zeros(4))
    with pytest.raises(L.LayoutError, match="expected a 2-D numeric matrix"):
        L.read_appropriateness(split)
    np.save(L.appropriateness_path(out, "val"), np.zeros((3, 3)))
    with pytest.raises(L.LayoutError, match=r"lists 1 rows, i.e. 2 clips .* must be \(2, 2\)"):
        L.read_appropriateness(split)
