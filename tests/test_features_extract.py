"""End-to-end feature extraction on a tiny synthetic REACT set: layout, shapes, sidecars, resume, failures."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers.features_data import FRAMES, TINY, copy_media, react_dataset, tiny_cfg
from helpers.launch import assert_same_files, launch_two_processes
from PIL import Image

from features.extract import extract, main
from features.video import count_video_frames, iter_rgb_frames
from react.reaction.data.react_layout import feature_path, read_split, video_path


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return react_dataset(tmp_path_factory)


@pytest.fixture(scope="module")
def extracted(data, tmp_path_factory):
    """Video + audio features of the test split, extracted once."""
    save = tmp_path_factory.mktemp("feats")
    cfg = tiny_cfg(data, save)
    return save, cfg, extract(cfg)


def _sidecar(path: Path) -> dict:
    return json.loads(path.with_suffix(".json").read_text())


def test_paths_shapes_and_equal_frame_counts(data, extracted):
    save, _, reports = extracted
    clips = read_split(data, "test").clips
    assert sorted(reports) == ["test audio", "test video"]
    assert all(sorted(r.done) == sorted(clips) and not r.failed for r in reports.values())
    for clip in clips:
        video = torch.load(feature_path(save, "test", "video", clip))
        audio = torch.load(feature_path(save, "test", "audio", clip))
        assert feature_path(save, "test", "video", clip) == save / "test" / "Video_features" / f"{clip}.pth"
        assert isinstance(video, torch.Tensor) and video.dtype == audio.dtype == torch.float32
        assert video.shape == (FRAMES, 64) and audio.shape == (FRAMES, 32)  # tiny Swin / tiny Wav2Vec2
        assert torch.isfinite(video).all() and torch.isfinite(audio).all()
        assert video.std(0).mean() > 0  # frames differ: the face moves


def test_sidecar_records_what_produced_the_features(data, extracted):
    save, _, _ = extracted
    clip = read_split(data, "test").clips[0]
    video = _sidecar(feature_path(save, "test", "video", clip))
    assert video["backbone"] == "swin_tiny_patch4_window7_224" and video["weights"] == "random"
    assert video["seed"] == 0 and video["fps"] == 25 and video["shape"] == [FRAMES, 64]
    assert (video["resize"], video["crop"], video["mean"], video["std"]) == (128, 112, 0.5, 0.5)  # tiny yaml
    assert video["source"] == f"test/Video_files/{clip}.mp4" and video["dtype"] == "float32"
    audio = _sidecar(feature_path(save, "test", "audio", clip))
    assert audio["backbone"] == "wav2vec2" and audio["kind"] == "ssl" and audio["layers"] == [-1]
    assert audio["weights"] == "random" and audio["shape"] == [FRAMES, 32] and audio["fps"] == 25
    assert audio["source"] == f"test/Audio_files/{clip}.wav"


def test_second_run_is_a_no_op(data, extracted):
    save, cfg, _ = extracted
    files = sorted(save.rglob("*.pth")) + sorted(save.rglob("*.json"))
    stamps = [f.stat().st_mtime_ns for f in files]
    reports = extract(cfg)
    assert all(not r.done and not r.failed and len(r.skipped) == 2 for r in reports.values())
    assert [f.stat().st_mtime_ns for f in files] == stamps
    assert not [p for p in save.rglob("*") if p.name.endswith(".tmp")]


def test_changed_settings_re_extract(data, extracted, tmp_path):
    save, _, _ = extracted
    target = tmp_path / "feats"
    shutil.copytree(save, target)
    clip = read_split(data, "test").clips[0]
    before = torch.load(feature_path(target, "test", "audio", clip))
    reports = extract(tiny_cfg(data, target, "type=audio", "audio.layers=[0,1]"))
    assert sorted(reports["test audio"].done) == sorted(read_split(data, "test").clips)
    after = torch.load(feature_path(target, "test", "audio", clip))
    assert after.shape == before.shape and not torch.allclose(after, before)
    assert _sidecar(feature_path(target, "test", "audio", clip))["layers"] == [0, 1]


def test_replaced_media_is_extracted_again(data, extracted, tmp_path):
    save, _, _ = extracted
    copy = copy_media(data, tmp_path / "data")
    target = tmp_path / "feats"
    shutil.copytree(save, target)
    speaker, listener = read_split(copy, "test").clips
    cfg = tiny_cfg(copy, target, "type=audio")
    assert not extract(cfg)["test audio"].done  # same media: nothing to do
    wav = copy / "test" / "Audio_files" / f"{speaker}.wav"
    wave, rate = sf.read(wav, dtype="float32")
    sf.write(wav, wave[::-1].copy(), rate)  # a different recording of the same length, same name
    report = extract(cfg)["test audio"]
    assert report.done == [speaker] and report.skipped == [listener]
    recorded = _sidecar(feature_path(target, "test", "audio", speaker))["input"]
    assert recorded["source"][0] == wav.stat().st_size


def test_missing_media_folder_is_one_line(data, tmp_path, capsys):
    copy = copy_media(data, tmp_path / "data")
    shutil.rmtree(copy / "test" / "Audio_files")
    rc = main(["--split", "test", "--type", "audio", "--data-dir", str(copy), "--out-dir",
               str(tmp_path / "f"), "--config", str(TINY), f"frames={FRAMES}"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("Audio_files") == 1 and "folder not found" in err


def test_corrupt_mp4_and_truncated_wav_are_reported_others_succeed(data, tmp_path, capsys):
    copy = copy_media(data, tmp_path / "data")
    speaker, listener = read_split(copy, "test").clips
    mp4 = video_path(copy, "test", speaker)
    mp4.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(4000))
    wav = copy / "test" / "Audio_files" / f"{listener}.wav"
    info = sf.info(str(wav))
    wav.write_bytes(wav.read_bytes()[: 44 + 2 * info.samplerate // 2])  # header + 0.5 s, header unchanged
    save = tmp_path / "feats"
    rc = main(["--split", "test", "--type", "all", "--data-dir", str(copy), "--out-dir", str(save),
               "--config", str(TINY), f"frames={FRAMES}"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "2 clips FAILED" in err and str(mp4) in err and str(wav) in err and "too short" in err
    assert not feature_path(save, "test", "video", speaker).exists()
    assert not feature_path(save, "test", "audio", listener).exists()
    assert torch.load(feature_path(save, "test", "audio", speaker)).shape == (FRAMES, 32)
    assert torch.load(feature_path(save, "test", "video", listener)).shape == (FRAMES, 64)
    assert not [p for p in save.rglob("*") if p.name.endswith(".tmp")]


def test_short_video_is_reported(data, tmp_path, capsys):
    rc = main(["--split", "test", "--type", "video", "--data-dir", str(data), "--out-dir", str(tmp_path),
               "--config", str(TINY), "frames=800", "video.batch_size=256"])
    err = capsys.readouterr().err
    assert rc == 1 and "video too short: 760 frames decoded, 800 expected" in err


@pytest.mark.parametrize("weights, message", [
    ("", "no weights given"),
    ("/nonexistent/swin.pth", "/nonexistent/swin.pth: video weights not found"),
])
def test_missing_weights_is_an_error_without_random_init(data, tmp_path, capsys, weights, message):
    args = ["--split", "test", "--type", "video", "--data-dir", str(data), "--out-dir", str(tmp_path),
            "--config", str(TINY), "video.random_init=false"]
    rc = main(args + (["--weights", weights] if weights else []))
    assert rc == 2 and message in capsys.readouterr().err
    assert not list(tmp_path.rglob("*.pth"))


def test_missing_audio_weights_is_an_error(data, tmp_path, capsys):
    rc = main(["--split", "test", "--type", "audio", "--data-dir", str(data), "--out-dir", str(tmp_path),
               "--weights", str(tmp_path / "no_w2v"), "--config", str(TINY), "audio.random_init=false"])
    assert rc == 2 and "no_w2v: audio weights not found" in capsys.readouterr().err


def test_png_folder_gives_the_same_features_as_the_mp4(data, extracted, tmp_path):
    save, _, _ = extracted
    copy = copy_media(data, tmp_path / "data")
    clip = read_split(copy, "test").clips[0]
    mp4 = video_path(copy, "test", clip)
    folder = mp4.with_suffix("")
    folder.mkdir()
    for i, frame in enumerate(iter_rgb_frames(mp4), start=1):
        Image.fromarray(frame).save(folder / f"{i}.png")
        if i == FRAMES:
            break
    mp4.unlink()
    assert video_path(copy, "test", clip) == folder and count_video_frames(folder) == FRAMES
    out = tmp_path / "feats"
    reports = extract(tiny_cfg(copy, out, "type=video"))
    assert not reports["test video"].failed
    torch.testing.assert_close(torch.load(feature_path(out, "test", "video", clip)),
                               torch.load(feature_path(save, "test", "video", clip)))


@pytest.mark.parametrize("kind, dim", [("logmel", 128), ("egemaps", 25)])
def test_weight_free_audio_follows_the_video_frame_count(data, tmp_path, kind, dim):
    clip = read_split(data, "test").clips[1]
    reports = extract(tiny_cfg(data, tmp_path, "type=audio", f"audio.kind={kind}", "frames=0"))
    assert not reports["test audio"].failed
    features = torch.load(feature_path(tmp_path, "test", "audio", clip))
    assert features.shape == (count_video_frames(video_path(data, "test", clip)), dim) == (760, dim)
    side = _sidecar(feature_path(tmp_path, "test", "audio", clip))
    assert side["kind"] == kind and side["frames"] == 0 and "weights" not in side
    if kind == "logmel":  # the voice's energy varies, so the frames' log-mel spectra do too
        assert np.ptp(features.mean(1).numpy()) > 0.5


@pytest.mark.slow
def test_batch_script_runs_every_split_and_type(data, tmp_path):
    script = Path(__file__).resolve().parents[1] / "scripts" / "extract_features.sh"
    env = {**os.environ, "PY": sys.executable}
    done = subprocess.run(["bash", str(script), str(data), str(tmp_path), "--config", str(TINY), "frames=8"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    for split in ("train", "val", "test"):
        for clip in read_split(data, split).clips:
            assert torch.load(feature_path(tmp_path, split, "video", clip)).shape == (8, 64)
            assert torch.load(feature_path(tmp_path, split, "audio", clip)).shape == (8, 32)
    usage = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)
    assert usage.returncode == 2 and "usage:" in usage.stderr


@pytest.mark.slow
def test_two_processes_write_exactly_the_files_of_one(data, tmp_path):
    # One clip per forward pass in both runs: batched BLAS calls need not round like single ones.
    one_clip = ["audio.batch_size=1", f"video.batch_size={FRAMES}"]
    save, out = tmp_path / "feats1", tmp_path / "feats2"
    extract(tiny_cfg(data, save, *one_clip))
    done = launch_two_processes(29583, "-m", "features.extract", "--config", str(TINY), "--data-dir",
                                str(data), "--out-dir", str(out), "--split", "test", "--type", "all",
                                f"frames={FRAMES}", "workers=1", *one_clip)
    assert done.stderr.count("test video: 2 extracted") == 1  # the main process reports for both
    assert_same_files(save, out)
    reports = extract(tiny_cfg(data, out, *one_clip))  # a restart finds every clip finished
    assert all(not r.done and len(r.skipped) == 2 for r in reports.values())
