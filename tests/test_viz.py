"""react.reaction.viz: plots are drawn, the face video has the right frames and follows the AUs, the HTML
report renders in headless Chromium with every image loaded, and bad input exits 2 naming the file."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import av
import matplotlib.image as mpimg
import numpy as np
import pytest
import torch
from helpers.eval_data import CLIPS, write_layout

from evaluation.metrics import METRIC_KEYS
from react.reaction.data import react_layout as L
from react.reaction.viz.__main__ import main
from react.reaction.viz.clip import PLOTS, VIDEO
from react.reaction.viz.face import COLUMN, FaceRenderer, face_params
from react.reaction.viz.report import write_report
from react.reaction.viz.video import STRIP, TITLE

FRAMES = 100
CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)


def smooth_samples(n: int, frames: int = FRAMES, seed: int = 0) -> np.ndarray:
    """``(n, frames, 25)`` smooth values in the attribute ranges."""
    t = np.linspace(0, 4 * np.pi, frames)[None, :, None]
    phase = np.random.default_rng(seed).uniform(0, 2 * np.pi, size=(n, 1, L.EMOTION_DIM))
    x = 0.5 + 0.45 * np.sin(t + phase)
    x[..., 15:17] = 2 * x[..., 15:17] - 1
    return x.astype(np.float32)


def save_samples(folder: Path, samples: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for k, sample in enumerate(samples):
        torch.save(torch.from_numpy(sample), folder / f"result-{k}.pth")


def write_pngs(folder: Path, count: int, height: int, width: int) -> None:
    """A speaker video as ``1.png .. count.png`` whose brightness changes every frame."""
    folder.mkdir(parents=True)
    for i in range(count):
        mpimg.imsave(folder / f"{i + 1}.png", np.full((height, width, 3), i / count, dtype=np.float32))


def assert_not_blank(path: Path, min_side: int = 200) -> None:
    image = mpimg.imread(path)[..., :3]
    assert min(image.shape[:2]) >= min_side, f"{path} is only {image.shape}"
    codes = (image.reshape(-1, 3) * 255).astype(np.uint32) @ np.array([1 << 16, 1 << 8, 1], np.uint32)
    colours = np.unique(codes)
    assert len(colours) > 50 and image.std() > 0.05, f"{path} looks blank"


def decode(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def faces(**attributes: float) -> np.ndarray:
    """One frame per keyword set: the neutral frame and one with the given attributes."""
    x = np.zeros((2, L.EMOTION_DIM), np.float32)
    for name, value in attributes.items():
        x[1, COLUMN[name]] = value
    renderer, params = FaceRenderer(128), face_params(x)
    return np.stack([renderer.draw(params, 0), renderer.draw(params, 1)]).astype(int)


def test_face_follows_action_units():
    skin = np.array([250, 214, 178])

    def marked_rows(image: np.ndarray, rows: slice, cols: slice) -> np.ndarray:
        """Rows of the box holding something drawn on the skin (brow, eye, lip)."""
        return rows.start + np.flatnonzero((np.abs(image[rows, cols] - skin).sum(-1) > 100).any(axis=1))

    neutral, opened = faces(AU25=1.0, AU26=1.0)
    mouth = (slice(85, 115), slice(40, 88))
    assert (opened[mouth].sum(-1) < 250).sum() > 4 * max((neutral[mouth].sum(-1) < 250).sum(), 1)
    neutral, raised = faces(AU1=1.0, AU2=1.0)
    brows = (slice(25, 52), slice(35, 93))
    assert marked_rows(raised, *brows).min() < marked_rows(neutral, *brows).min() - 3  # brows go up
    neutral, lowered = faces(AU4=1.0)
    assert marked_rows(lowered, *brows).min() > marked_rows(neutral, *brows).min()
    neutral, squint = faces(AU6=1.0, AU7=1.0)
    eyes = (slice(45, 70), slice(35, 93))
    assert (squint[eyes].min(-1) > 250).sum() < 0.6 * (neutral[eyes].min(-1) > 250).sum()  # less white
    neutral, smile = faces(AU12=1.0)
    corner = (slice(80, 105), slice(44, 50))  # the left mouth corner rises
    assert marked_rows(smile, *corner).min() < marked_rows(neutral, *corner).min() - 3
    neutral, frown = faces(AU15=1.0)
    assert marked_rows(frown, *corner).max() > marked_rows(neutral, *corner).max() + 3


def test_cli_clip_writes_plots_and_a_video_that_moves(tmp_path, capsys):
    samples = smooth_samples(3)
    samples[0, :, :L.NUM_AUS] = samples[0, :, L.NUM_AUS + 2:] = 0.0
    samples[0, :, COLUMN["AU26"]] = np.linspace(0, 1, FRAMES)  # only the jaw moves: it opens
    save_samples(tmp_path / "pred", samples)
    L.write_emotion(tmp_path / "gt.csv", smooth_samples(1, seed=1)[0])
    write_pngs(tmp_path / "speaker", 20, 48, 64)  # shorter and not square: cropped, last frame held
    out = tmp_path / "out"
    code = main(["clip", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt.csv"),
                 "--speaker-video", str(tmp_path / "speaker"), "--out-dir", str(out), "--size", "128"])
    assert code == 0, capsys.readouterr().err
    for name in PLOTS:
        assert_not_blank(out / name)
    frames = decode(out / VIDEO)
    assert frames.shape == (FRAMES, TITLE + 128 + STRIP, 3 * 128, 3)  # speaker | listener | sample
    face = frames[:, TITLE:TITLE + 128]
    speaker, sample = face[:, :, :128].astype(int), face[:, :, 256:].astype(int)
    mouth = (slice(85, 120), slice(35, 93))
    assert np.abs(sample[-1][mouth] - sample[0][mouth]).mean() > 20  # the mouth opened
    assert np.abs(sample[-1][:80] - sample[0][:80]).mean() < 4  # and nothing above it moved
    assert np.abs(speaker[10] - speaker[0]).mean() > 20  # the speaker video plays ...
    assert np.abs(speaker[-1] - speaker[19]).mean() < 2  # ... then holds its last frame


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """A report over the first 2 of 6 clips (3 samples of 100 frames each, videos on)."""
    root = tmp_path_factory.mktemp("viz_report")
    write_layout(root, "val")
    for c, clip in enumerate(CLIPS):
        save_samples(root / "pred" / "val" / clip, smooth_samples(3, seed=c))
    write_pngs(root / "val" / "Video_files" / CLIPS[0], 20, 64, 64)
    metrics = {k: float(v) for k, v in zip(METRIC_KEYS, (0.2, 80.5, 0.01, 0.005, 0.03, 40.0))}
    metrics.update(split="val", clips=6, samples=3, seconds={"total": 1.0})
    (root / "metrics.json").write_text(json.dumps(metrics))
    return write_report(root / "metrics.json", root / "pred", root, root / "report", limit=2, videos=True)


def image_sources(page: Path) -> list[str]:
    return re.findall(r"<img [^>]*src='([^']+)'", page.read_text()) + re.findall(
        r'<img [^>]*src="([^"]+)"', page.read_text())


def test_report_pages_link_existing_files(report):
    pages = [report] + [report.parent / "clips" / f"{c:03d}" / "index.html" for c in range(2)]
    for page in pages:
        sources = image_sources(page)
        assert sources, f"{page} shows no images"
        for src in sources:
            assert (page.parent / src).is_file(), f"{page}: {src} does not exist"
    text = report.read_text()
    assert all(k in text for k in METRIC_KEYS) and "clips/001/index.html" in text
    assert not (report.parent / "clips" / "002").exists()  # limit=2
    assert "<video src='face.mp4'" in pages[1].read_text()
    assert len(decode(report.parent / "clips" / "000" / VIDEO)) == FRAMES


def chromium_check(page: Path, tmp_path: Path, screenshot: Path | None = None) -> list[int]:
    """Load a copy of ``page`` (same folder) in headless Chromium; naturalWidth of every <img>."""
    probe = page.with_name("_probe.html")
    script = ("<script>addEventListener('load', () => { document.body.dataset.widths = "
              "[...document.images].map(i => i.naturalWidth).join(','); });</script></body>")
    probe.write_text(page.read_text().replace("</body>", script))
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               f"--user-data-dir={tmp_path / 'chromium'}", "--virtual-time-budget=5000",
               "--window-size=1280,1600", "--dump-dom", probe.as_uri()]
    if screenshot:
        command.insert(-2, f"--screenshot={screenshot}")
    try:
        dom = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout
    finally:
        probe.unlink()
    widths = re.search(r'data-widths="([\d,]*)"', dom)
    assert widths, f"the load event never ran in {page}"
    return [int(w) for w in widths.group(1).split(",") if w]


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (apt-get install -y chromium)")
def test_report_renders_in_headless_chromium(report, tmp_path):
    shot = tmp_path / "index.png"
    widths = chromium_check(report, tmp_path, shot)
    assert len(widths) == 3 and min(widths) > 0, f"images that did not load: {widths}"  # summary + 2 thumbs
    assert_not_blank(shot)
    widths = chromium_check(report.parent / "clips" / "000" / "index.html", tmp_path)
    assert len(widths) == len(PLOTS) and min(widths) > 0, f"images that did not load: {widths}"


def test_bad_input_exits_2_naming_the_file(report, tmp_path, capsys):
    assert main(["clip", "--pred", str(tmp_path / "nowhere"), "--out-dir", str(tmp_path / "o")]) == 2
    assert str(tmp_path / "nowhere") in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["clip", "--pred", str(tmp_path / "empty"), "--out-dir", str(tmp_path / "o")]) == 2
    assert "no result-<k>.pth" in capsys.readouterr().err
    bad = tmp_path / "bad.pth"
    torch.save(torch.zeros(10, 7), bad)
    assert main(["clip", "--pred", str(bad), "--out-dir", str(tmp_path / "o")]) == 2
    assert f"{bad}: expected a (frames, 25) tensor, got (10, 7)" in capsys.readouterr().err
    root = report.parent.parent
    shutil.copytree(root / "pred", tmp_path / "pred")
    args = ["report", "--pred-dir", str(tmp_path / "pred"), "--data-dir", str(root),
            "--out-dir", str(tmp_path / "r")]
    assert main([*args, "--metrics", str(tmp_path / "missing.json")]) == 2
    assert f"{tmp_path / 'missing.json'}: metrics file not found" in capsys.readouterr().err
    assert main([*args, "--metrics", str(root / "metrics.json"), "--split", "test"]) == 2
    assert "computed on split 'val'" in capsys.readouterr().err
    shutil.rmtree(tmp_path / "pred" / "val" / CLIPS[4])
    assert main([*args, "--metrics", str(root / "metrics.json")]) == 2
    missing = tmp_path / "pred" / "val" / CLIPS[4]
    assert f"{missing}: prediction file or folder not found" in capsys.readouterr().err


def test_report_refuses_metrics_of_other_predictions(report, tmp_path, capsys):
    root = report.parent.parent
    metrics = json.loads((root / "metrics.json").read_text())
    (tmp_path / "metrics.json").write_text(json.dumps({**metrics, "pred_dir": str(tmp_path / "other")}))
    assert main(["report", "--metrics", str(tmp_path / "metrics.json"), "--pred-dir", str(root / "pred"),
                 "--data-dir", str(root), "--out-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert f"computed from the predictions in {tmp_path / 'other'}, not {root / 'pred'}" in err


def test_report_shows_the_run_baselines_and_per_clip_scores(report, tmp_path):
    root = report.parent.parent
    run = tmp_path / "run"
    shutil.copytree(root / "pred", run / "pred")
    features = tmp_path / "features"
    sidecar = features / "val" / "Video_features" / CLIPS[0]
    sidecar.parent.mkdir(parents=True)
    settings = {"backbone": "swin_tiny", "weights": "random", "seed": 0}
    sidecar.with_suffix(".json").write_text(json.dumps(settings))
    (run / "config.yaml").write_text(f"task: regnn\ndata:\n  root: {root}\n  features_root: {features}\n")
    (run / "checkpoints" / "best").mkdir(parents=True)
    metrics = json.loads((root / "metrics.json").read_text())
    metrics.update(pred_dir=str(run / "pred"), frd_pairs=12, inputs_sha1="abc",
                   per_clip={"clip": CLIPS, "FRC": [0.125 * i for i in range(6)],
                             "FRD": [80.0 + i for i in range(6)]})
    (run / "metrics.json").write_text(json.dumps(metrics))
    (tmp_path / "comparison.csv").write_text(
        "name,pred_dir,FRC,FRD,S-MSE,FRVar,FRDvs,TLCC,TLCC_worst_clips\n"
        "B_Random,P/Random,0.05,228.3,0.16,0.08,0.16,46.3,0\n")
    index = write_report(run / "metrics.json", run / "pred", root, tmp_path / "r", limit=2,
                         compare=tmp_path / "comparison.csv")
    text = index.read_text()
    assert "regnn" in text and str(run / "checkpoints" / "best") in text and str(run / "config.yaml") in text
    assert "RANDOMLY INITIALISED" in text and "swin_tiny" in text  # the video backbone had no weights
    assert "<th>B_Random</th>" in text and "228.3" in text  # a baseline beside the model
    assert "<td class='num'>0.125</td><td class='num'>81</td>" in text  # clip 1's FRC and FRD
    assert "frd_pairs" not in text and "inputs_sha1" not in text and "seconds" not in text


def test_constrained_form_clips_aus_and_renormalises_expressions():
    x = np.zeros((2, L.EMOTION_DIM), np.float32)
    x[0, :3] = (1.3, -0.2, 0.4)
    x[0, 15:17] = (1.5, -0.5)
    x[0, 17:20] = (-0.34, 0.79, 0.5)  # as raw REGNN output: negative values, sum 0.95 after clipping 1.29
    x[1, 17:] = -0.1  # nothing left after clipping: uniform
    y = L.constrained_attributes(x)
    np.testing.assert_allclose(y[0, :3], (1.0, 0.0, 0.4))
    np.testing.assert_allclose(y[0, 15:17], (1.0, -0.5))
    np.testing.assert_allclose(y[0, 17:20], (0.0, 0.79 / 1.29, 0.5 / 1.29), rtol=1e-6)
    np.testing.assert_allclose(y[1, 17:], 1 / 8)
    assert x[0, 0] == np.float32(1.3)  # the input (raw output, what the evaluation scores) is untouched
