"""``react viz {clip,report}``: pictures of reactions. Bad input: message on stderr, exit 2."""

from __future__ import annotations

import argparse
import sys
import time

from react.errors import LayoutError
from react.reaction.viz.inputs import VizError
from react.utils.cli import add_data_dir, add_out_dir, add_pred_dir, add_split


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="react viz", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    clip = commands.add_parser("clip", help="plots and face-sketch video of one clip's samples")
    clip.add_argument("--pred", nargs="+", required=True,
                      help="result-<k>.pth files, or a folder holding them")
    clip.add_argument("--gt", help="the real listener's Emotion CSV (or a (T, 25) .npy), drawn beside")
    clip.add_argument("--speaker-video", help="speaker mp4 or folder of 1.png..T.png, shown on the left")
    add_out_dir(clip, required=True, dest="out", help="folder for the pictures")
    clip.add_argument("--sample", type=int, default=0, help="sample drawn in the video (default 0)")
    clip.add_argument("--no-video", action="store_true", help="plots only")
    clip.add_argument("--size", type=int, default=256, help="face panel side in pixels (even, >= 128)")
    report = commands.add_parser("report", help="HTML report of one evaluation")
    report.add_argument("--metrics", required=True, help="metrics.json written by react evaluate --out")
    add_pred_dir(report, required=True)
    add_data_dir(report, required=True, help="REACT dataset root")
    add_split(report, default=None, help="default: the split recorded in metrics.json")
    add_out_dir(report, required=True, dest="out", help="report folder (open its index.html)")
    report.add_argument("--limit", type=int, default=0, help="first N clips only (0 = all)")
    report.add_argument("--videos", action="store_true", help="also render each clip's face-sketch video")
    report.add_argument("--sample", type=int, default=0, help="sample drawn in single-sample plots/videos")
    report.add_argument("--compare", help="comparison.csv of python -m evaluation.compare: its rows (the "
                                          "baselines) are shown beside the model")
    return parser.parse_args(argv)


def run_clip(args: argparse.Namespace) -> None:
    from react.reaction.viz.clip import render_clip
    from react.reaction.viz.inputs import find_samples, load_attributes, load_samples

    samples = load_samples(find_samples(args.pred))
    truth = load_attributes(args.gt, samples.shape[1]) if args.gt else None
    for path in render_clip(samples, args.out, truth, args.speaker_video, args.sample, not args.no_video,
                            args.size):
        print(path)


def run_report(args: argparse.Namespace) -> None:
    from react.reaction.viz.report import write_report

    if args.limit < 0:
        raise VizError(f"--limit must be >= 0 (0 = all clips), got {args.limit}")
    print(write_report(args.metrics, args.pred_dir, args.data_dir, args.out, args.split, args.limit,
                       args.videos, args.sample, args.compare))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    try:
        (run_clip if args.command == "clip" else run_report)(args)
    except (VizError, LayoutError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"done in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
