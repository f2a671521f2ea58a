"""Dyadic windows on a hand-built REACT layout: windows, neighbour sets, audio resampling,
augmentation, collation, bad inputs; overlap-add blending of windows."""

import numpy as np
import pytest
import torch

from react.reaction.data import react_layout as L
from react.reaction.data.dyadic import DyadicWindows, FeatureAugment, collate_windows, window_starts
from react.reaction.generation import blend_windows, taper

CLIPS = ["NoXI/001_a/Expert_video/1", "RECOLA/group-1/P25/1", "NoXI/001_a/Novice_video/1",
         "RECOLA/group-1/P26/1"]
# Rows k, columns j: reaction L[j] (the listener of clip j) is appropriate for clip k.
MATRIX = np.array([[1, 0, 1, 1], [0, 1, 0, 0], [1, 1, 1, 0], [0, 0, 0, 1]], dtype=np.float32)
VIDEO_DIM, AUDIO_DIM = 3, 2


def emotion_of(clip: int) -> np.ndarray:
    """Clip ``c`` frame ``t`` column ``d`` holds ``c + t / 1000 + d / 100``: every cell is distinct."""
    t = np.arange(L.NUM_FRAMES)[:, None] / 1000
    return (clip + t + np.arange(L.EMOTION_DIM)[None] / 100).astype(np.float32)


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    root = tmp_path_factory.mktemp("react")
    (root / "train.csv").write_text(f"index,speaker_path,listener_path\n0,{CLIPS[0]},{CLIPS[2]}\n"
                                    f"1,{CLIPS[1]},{CLIPS[3]}\n")
    np.save(root / "neighbour_emotion_train.npy", MATRIX)
    for c, clip in enumerate(CLIPS):
        L.write_emotion(L.emotion_path(root, "train", clip), emotion_of(c))
        video = torch.arange(L.NUM_VIDEO_FRAMES, dtype=torch.float32)[:, None] + 1000 * c
        audio = torch.arange(2 * L.NUM_VIDEO_FRAMES, dtype=torch.float32)[:, None] + 1000 * c
        for kind, values, dim in (("video", video, VIDEO_DIM), ("audio", audio, AUDIO_DIM)):
            path = L.feature_path(root, "train", kind, clip)
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save(values.expand(-1, dim).clone(), path)
    return root


def dataset(root, **kw) -> DyadicWindows:
    return DyadicWindows(root, "train", video_dim=VIDEO_DIM, audio_dim=AUDIO_DIM, **kw)


def test_window_starts():
    assert window_starts(750, 50, 25).tolist() == list(range(0, 701, 25))
    assert window_starts(750, 50, 30).tolist() == list(range(0, 691, 30)) + [700]
    with pytest.raises(ValueError):
        window_starts(40, 50, 25)


def test_windows_and_neighbour_sets(layout):
    ds = dataset(layout)
    assert len(ds) == 4 * 29
    item = ds[2 * 29 + 3]  # clip 2, the 4th window
    assert item["clip"] == 2 and item["start"] == 75
    np.testing.assert_array_equal(item["speaker"], emotion_of(2)[75:125])
    np.testing.assert_array_equal(item["listener"], emotion_of(0)[75:125])  # listener of clip 2 is clip 0
    # M[2] = {0, 1, 2}: reactions L[2] = clip 0 (real listener, first), L[0] = clip 2, L[1] = clip 3.
    assert ds.reaction_indices(2).tolist() == [0, 2, 3]
    expected = np.stack([emotion_of(c)[75:125] for c in (0, 2, 3)])
    np.testing.assert_array_equal(item["reactions"], expected)
    assert ds.reaction_indices(1).tolist() == [3]
    assert ds.reaction_indices(0).tolist() == [2, 0, 1]  # M[0] = {0, 2, 3} -> listeners 2, 0, 1
    assert dataset(layout, pattern="pair").reaction_indices(2).tolist() == [0]


def test_training_subsamples_neighbours_keeping_the_real_listener(layout):
    ds = dataset(layout, training=True, max_neighbours=2)
    seen = set()
    for _ in range(40):
        idx = ds.reaction_indices(2).tolist()
        assert len(idx) == 2 and idx[0] == 0
        seen.add(idx[1])
    assert seen == {2, 3}
    assert dataset(layout, max_neighbours=2).reaction_indices(2).tolist() == [0, 2, 3]  # eval: all


def test_training_subsample_without_keeping_the_listener_is_uniform(layout):
    ds = dataset(layout, training=True, max_neighbours=2, keep_listener=False)  # official random.sample
    seen = set()
    for _ in range(60):
        idx = ds.reaction_indices(2).tolist()
        assert len(idx) == 2 and len(set(idx)) == 2 and set(idx) <= {0, 2, 3}
        seen.add(frozenset(idx))
    assert seen == {frozenset({0, 2}), frozenset({0, 3}), frozenset({2, 3})}  # the listener may be left out


def test_features_and_audio_resampling(layout):
    item = dataset(layout)[3 * 29 + 1]  # clip 3, frames 25..74
    frames = torch.arange(25, 75, dtype=torch.float32)[:, None]
    torch.testing.assert_close(item["video"], (frames + 3000).expand(-1, VIDEO_DIM))
    # Audio at twice the video rate, a[j] = j: video frame t reads between audio rows 2t and 2t+1.
    torch.testing.assert_close(item["audio"], (2 * frames + 0.5 + 3000).expand(-1, AUDIO_DIM))
    video, audio = dataset(layout).clip_conditions(3, ("video", "audio")).values()
    assert video.shape == (29, 50, VIDEO_DIM) and audio.shape == (29, 50, AUDIO_DIM)
    torch.testing.assert_close(video[1], item["video"])
    torch.testing.assert_close(audio[1], item["audio"])


def test_generation_needs_only_features(layout, tmp_path):
    (tmp_path / "train.csv").write_text((layout / "train.csv").read_text())
    ds = dataset(tmp_path, features_root=layout, targets=False)  # no Emotion CSVs, no matrix here
    video, audio = ds.clip_conditions(1, ("video", "audio")).values()
    assert video.shape == (29, 50, VIDEO_DIM) and audio.shape == (29, 50, AUDIO_DIM)
    with pytest.raises(RuntimeError, match="targets=False"):
        ds[0]
    with pytest.raises(L.LayoutError, match="Emotion file not found"):
        dataset(tmp_path, features_root=layout)


def test_augmentation_only_when_training(layout):
    augment = FeatureAugment(noise_std=0.5, feature_dropout=0.5)
    clean = dataset(layout, augment=augment)[5]["video"]
    assert torch.equal(clean, dataset(layout)[5]["video"])
    noisy = dataset(layout, training=True, augment=augment)[5]["video"]
    assert (noisy == 0).any() and not torch.equal(noisy, clean)


def test_collate_pads_reaction_sets(layout):
    ds = dataset(layout)
    batch = collate_windows([ds[0], ds[29], ds[2 * 29]])
    assert batch["reactions"].shape == (3, 3, 50, 25) and batch["video"].shape == (3, 50, VIDEO_DIM)
    assert batch["mask"].tolist() == [[True, True, True], [True, False, False], [True, True, True]]
    assert (batch["reactions"][1, 1:] == 0).all()
    assert batch["clip"].tolist() == [0, 1, 2] and batch["index"].tolist() == [0, 29, 58]


def test_bad_inputs_are_reported_with_the_file(layout, tmp_path):
    with pytest.raises(ValueError, match="neighbour pattern"):
        dataset(layout, pattern="random")
    with pytest.raises(L.LayoutError, match=r"Video_features.*expected at least 750 frames x 4"):
        DyadicWindows(layout, "train", video_dim=4, audio_dim=AUDIO_DIM)[0]
    bad = tmp_path / "bad"
    for kind, dim in (("video", VIDEO_DIM), ("audio", AUDIO_DIM)):
        for c, clip in enumerate(CLIPS):
            path = L.feature_path(bad, "train", kind, clip)
            path.parent.mkdir(parents=True, exist_ok=True)
            values = torch.zeros(L.NUM_VIDEO_FRAMES, dim)
            if c == 1 and kind == "audio":
                values[30, 0] = float("nan")
            torch.save(values, path)
    ds = dataset(layout, features_root=bad)
    assert torch.equal(ds[0]["audio"], torch.zeros(50, AUDIO_DIM))
    with pytest.raises(L.LayoutError, match=r"P25/1.pth: contains NaN"):
        ds[29 + 2]  # frames 50..99: the NaN at frame 30 is outside the window but in the file
    L.feature_path(bad, "train", "video", CLIPS[2]).write_bytes(b"not a tensor")
    with pytest.raises(L.LayoutError, match=r"Novice_video/1.pth: cannot read features"):
        ds[2 * 29]
    L.feature_path(bad, "train", "video", CLIPS[3]).unlink()
    with pytest.raises(L.LayoutError, match=r"P26/1.pth: video features not found"):
        ds[3 * 29]


def test_blend_windows_reconstructs_overlapping_signal():
    signal = torch.randn(2, 750, 25)
    starts = window_starts(750, 50, 30)  # uneven overlap at the end
    windows = torch.stack([signal[:, s:s + 50] for s in starts.tolist()], 1)  # (2, W, 50, 25)
    torch.testing.assert_close(blend_windows(windows, starts, 750), signal)
    # Two different constants overlapping by half a window meet with the taper's weights.
    pair = torch.stack([torch.zeros(50, 1), torch.ones(50, 1)])
    blended = blend_windows(pair, torch.tensor([0, 25]), 75)[:, 0]
    w = taper(50)
    torch.testing.assert_close(blended[25:50], w[:25] / (w[25:] + w[:25]))
    assert blended[:25].eq(0).all() and blended[50:].eq(1).all()
    with pytest.raises(ValueError, match="do not cover"):
        blend_windows(pair, torch.tensor([0, 60]), 120)
