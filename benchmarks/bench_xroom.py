"""Speed of the XRoom pre-processing on one hour of 50 Hz Shimmer data plus its VR stream.

Writes one synthetic one-hour session (``scripts/make_synthetic_xroom.py``, not timed), then times
the pre-processing stage (read, label, resample, split, scale, window, write ``.npy`` and CSVs)
for bio, body and bio+body, and the handcrafted features of the bio windows. Prints wall time,
input rows per second and windows per second.

    python benchmarks/bench_xroom.py [--minutes 60] [--vr-hz 60] [--out bench.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import make_synthetic_xroom as gen  # noqa: E402

from features.handcrafted import HandcraftedConfig, extract_handcrafted  # noqa: E402
from react.data.windows import DatasetConfig, PreprocessConfig, preprocess  # noqa: E402

RUNS = {
    "bio": dict(modalities=["bio"]),
    "body": dict(modalities=["body"], seq_len=1.0, overlap=0.5),
    "bio+body": dict(modalities=["bio", "body"]),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--vr-hz", type=float, default=60.0)
    ap.add_argument("--out", help="also write the figures as JSON here")
    args = ap.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "XRoom"
        levels = max(1, round(args.minutes * 60 / 35.0))  # a level and its pause take about 35 s
        t = time.perf_counter()
        gen.write_session(root / "P1", seed=0, p=1, s=0, levels=levels, vr_hz=args.vr_hz)
        files = {f.name.split("_")[3]: f for f in (root / "P1").iterdir()}
        rows = {k: sum(1 for _ in open(f)) - 1 for k, f in files.items()}
        print(f"wrote {rows['SHIMMER']} Shimmer rows (50 Hz), {rows['VR']} VR rows ({args.vr_hz:g} Hz), "
              f"{rows['PROGRESS']} events in {time.perf_counter() - t:.1f} s (not timed below)")
        dataset = DatasetConfig("XRoom", str(root), str(Path(tmp) / "outputs"))
        for name, changes in RUNS.items():
            cfg = replace(PreprocessConfig(), create_splits=False, get_ssl=True, **changes)
            t = time.perf_counter()
            res = preprocess(dataset, cfg, log=lambda _: None)
            wall = time.perf_counter() - t
            n_rows = sum(rows["SHIMMER" if m == "bio" else "VR"] for m in cfg.modalities)
            n_win = sum(res.counts.values())
            results[name] = {"seconds": round(wall, 3), "input_rows": n_rows, "windows": n_win,
                             "rows_per_s": round(n_rows / wall), "windows_per_s": round(n_win / wall)}
            print(f"preprocess {name:9s} {wall:6.2f} s  {n_rows / wall:10,.0f} rows/s  "
                  f"{n_win:6d} windows ({res.counts['train']} labelled)  {n_win / wall:8,.0f} windows/s")
            if name == "bio":
                t = time.perf_counter()
                written = extract_handcrafted(res.out_dir, HandcraftedConfig())
                wall = time.perf_counter() - t
                results["handcrafted_bio"] = {"seconds": round(wall, 3), "windows": written["statistical"]}
                print(f"handcrafted bio     {wall:6.2f} s  {written['statistical'] / wall:10,.0f} windows/s "
                      "(statistical + spectral)")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
