"""Matrices regenerated from the synthetic set equal the generator's; planted pairs come out appropriate."""

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest

from react.errors import LayoutError
from react.reaction.data import matrices
from react.reaction.data import react_layout as L
from tests.helpers.regnn_data import synthetic_react


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    return synthetic_react(tmp_path_factory.mktemp("m") / "data", pairs=8, eval_pairs=4, seed=1)


@pytest.fixture
def data(synthetic, tmp_path) -> Path:
    return Path(shutil.copytree(synthetic, tmp_path / "data"))


def generator_matrix(data: Path, split: str) -> np.ndarray:
    return np.load(L.appropriateness_path(data, split))


@pytest.mark.parametrize("split", L.SPLITS)
def test_emotion_rule_reproduces_the_generator(synthetic, tmp_path, split, capsys):
    out = tmp_path / "out"
    args = ["emotion", "--data-dir", str(synthetic), "--splits", split, "--out-dir", str(out)]
    assert matrices.main(args) == 0
    assert "RMS distance threshold" in capsys.readouterr().out
    regenerated = np.load(L.appropriateness_path(out, split))
    assert regenerated.dtype == np.float32
    np.testing.assert_array_equal(regenerated, generator_matrix(synthetic, split))
    # With one split the dataset-wide matrix is that split's matrix.
    np.testing.assert_array_equal(np.load(out / L.DATASET_MATRIX), regenerated)


def test_assemble_then_split_gives_back_the_generator_matrices(data, tmp_path):
    assert matrices.main(["assemble", "--data-dir", str(data)]) == 0
    index = matrices.read_index(data / L.DATA_INDICES)
    wide = np.load(data / L.DATASET_MATRIX)
    sizes = [len(L.read_split(data, s)) for s in L.SPLITS]
    assert wide.shape == (sum(sizes), sum(sizes)) and len(index) == sum(sizes)
    # Clips of different splits were never judged: block-diagonal in the dataset-wide order.
    splits = np.array([d.split for d in index.dyads] * 2)
    assert not wide[splits[:, None] != splits[None, :]].any()
    originals = {s: generator_matrix(data, s) for s in L.SPLITS}
    for s in L.SPLITS:
        L.appropriateness_path(data, s).unlink()
    assert matrices.main(["split", "--data-dir", str(data)]) == 0
    for s in L.SPLITS:
        np.testing.assert_array_equal(generator_matrix(data, s), originals[s])


def test_index_file_format_and_official_three_columns(data, tmp_path):
    assert matrices.main(["assemble", "--data-dir", str(data)]) == 0
    with open(data / L.DATA_INDICES) as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == matrices.INDEX_COLUMNS
    d = len(rows) - 1
    train = L.read_split(data, "train")
    assert rows[4] == ["RECOLA", "group-1", "1", "train", "3", str(3 + d),
                       train.speakers[3], train.listeners[3]]
    # An official-style index (only site, session, clip) cuts the same matrices.
    (data / L.DATA_INDICES).write_text("\n".join(",".join(r[:3]) for r in rows) + "\n")
    index = matrices.read_index(data / L.DATA_INDICES)
    assert index.dyads[3] == matrices.Dyad(("RECOLA", "group-1", "1"))
    wide = matrices.load_matrix(data / L.DATASET_MATRIX, len(index))
    for s in L.SPLITS:
        cut = matrices.cut(wide, index, L.read_split(data, s))
        np.testing.assert_array_equal(cut, generator_matrix(data, s))


def test_cut_matches_the_official_block_formula(data):
    """``matrix_split.py`` fills four blocks from dyad rows ``item`` and ``item + W/2``."""
    index = matrices.build_index(data)
    wide = np.random.default_rng(0).integers(0, 2, (len(index), len(index))).astype(bool)
    split = L.read_split(data, "val")
    items = [[d.key for d in index.dyads].index(L.dyad_key(s)) for s in split.speakers]
    n, half = len(items), len(index) // 2
    expected = np.zeros((2 * n, 2 * n), dtype=bool)
    for i, a in enumerate(items):
        for j, b in enumerate(items):
            expected[i, j], expected[i, j + n] = wide[a, b], wide[a, b + half]
            expected[i + n, j], expected[i + n, j + n] = wide[a + half, b], wide[a + half, b + half]
    np.testing.assert_array_equal(matrices.cut(wide, index, split), expected)


def plant(data: Path, source: tuple[str, str], target: tuple[str, str], noise: float, seed: int) -> None:
    """Overwrite the target clip's Emotion with a near-copy of the source clip's."""
    values = L.read_emotion(L.emotion_path(data, *source))
    values += np.random.default_rng(seed).normal(0, noise, values.shape).astype(np.float32)
    L.write_emotion(L.emotion_path(data, *target), values)


@pytest.mark.parametrize("descriptor", matrices.DESCRIPTORS)
def test_planted_pairs_come_out_appropriate(data, descriptor):
    train, val, test = (L.read_split(data, s) for s in L.SPLITS)
    # Listener reactions of train dyad 0 and val dyad 0 made alike (across splits), and of test
    # dyads 0 and 1 (within a split).
    plant(data, ("train", train.listeners[0]), ("val", val.listeners[0]), 0.01, 1)
    plant(data, ("test", test.listeners[0]), ("test", test.listeners[1]), 0.01, 2)
    index = matrices.build_index(data)
    pos = {(d.split, d.speaker): r for r, d in enumerate(index.dyads)}
    planted = [(pos["train", train.speakers[0]], pos["val", val.speakers[0]]),
               (pos["test", test.speakers[0]], pos["test", test.speakers[1]])]
    emotions = matrices.index_emotions(data, index)
    dist = matrices.rms_distances(matrices.descriptors(emotions, descriptor))
    threshold = 1.5 * max(dist[a + len(index) // 2, b + len(index) // 2] for a, b in planted)
    matrix, used = matrices.emotion_matrix(emotions, threshold=threshold, descriptor=descriptor)
    assert used == threshold and matrix.dtype == np.float32
    expected = np.eye(len(index), dtype=bool)
    for a, b in planted:
        expected[a, b] = expected[b, a] = True
    np.testing.assert_array_equal(matrix.astype(bool), expected)
    # The default quantile rule also finds them, among others.
    matrix, _ = matrices.emotion_matrix(emotions, descriptor=descriptor)
    assert all(matrix[a, b] and matrix[b, a] for a, b in planted)
    assert (matrix == matrix.T).all() and (np.diag(matrix) == 1).all() and matrix.mean() < 0.5


def test_index_rejects_broken_split_lists(data):
    lines = (data / "val.csv").read_text().splitlines()
    speaker, listener = lines[1].split(",")[1:]
    (data / "val.csv").write_text(f"{lines[0]}\n0,{speaker},{listener[:-1]}2\n")
    with pytest.raises(LayoutError, match="are not the same dyad"):
        matrices.build_index(data)
    (data / "val.csv").write_text(f"{lines[0]}\n0,{speaker},{listener}\n")
    (data / "test.csv").write_text(f"{lines[0]}\n0,{speaker},{listener}\n")
    with pytest.raises(LayoutError, match="is already listed in val.csv"):
        matrices.build_index(data)


def test_cli_refuses_to_overwrite_without_force(data, capsys):
    assert matrices.main(["emotion", "--data-dir", str(data)]) == 2
    assert "pass --force to overwrite" in capsys.readouterr().err
    before = generator_matrix(data, "train")
    assert matrices.main(["emotion", "--data-dir", str(data), "--force", "--threshold", "0"]) == 0
    after = generator_matrix(data, "train")
    assert (after == np.eye(len(after))).all() and not (before == after).all()
