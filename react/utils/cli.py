"""The command line's one vocabulary: the flags that several commands share, defined once.

- ``--data-dir``: the dataset root (the config key ``data.root``);
- ``--out-dir``: a folder the command writes; ``--out``: a file it writes;
- ``--pred-dir``: a prediction folder, ``<pred-dir>/<split>/<clip>/result-<k>.pth``;
- ``--split``: one of :data:`SPLITS` (some commands also take ``all``).

Exit status of every command: 0 done; 1 some items of a batch failed (listed) and the rest were
done; 2 bad input (a usage error, or a file or setting that cannot be used), nothing done; 130
interrupted.
"""

from __future__ import annotations

import argparse
import json

from react.reaction.data.react_layout import SPLITS

BAD_INPUT = 2  # exit status for bad input, as argparse's own usage errors


def add_data_dir(parser: argparse.ArgumentParser, help: str = "dataset root (config key data.root)",
                 **kwargs) -> argparse.Action:
    """``--data-dir``: the dataset a command reads (or, for a generator, writes)."""
    return parser.add_argument("--data-dir", help=help, **kwargs)


def add_out_dir(parser: argparse.ArgumentParser, help: str, **kwargs) -> argparse.Action:
    """``--out-dir``: the folder a command writes."""
    return parser.add_argument("--out-dir", help=help, metavar=kwargs.pop("metavar", "OUT_DIR"), **kwargs)


def add_out(parser: argparse.ArgumentParser, help: str, **kwargs) -> argparse.Action:
    """``--out``: the file a command writes."""
    return parser.add_argument("--out", help=help, **kwargs)


def add_pred_dir(parser: argparse.ArgumentParser,
                 help: str = "prediction folder: <pred-dir>/<split>/<clip>/result-<k>.pth",
                 **kwargs) -> argparse.Action:
    """``--pred-dir``: a prediction folder (read, or written by a generator)."""
    return parser.add_argument("--pred-dir", help=help, **kwargs)


def add_split(parser: argparse.ArgumentParser, default: str | None = "test", all_splits: bool = False,
              help: str | None = None) -> argparse.Action:
    """``--split``: one of :data:`SPLITS`, or also ``all`` where a command can run every split."""
    choices = (*SPLITS, "all") if all_splits else SPLITS
    text = help or (f"default: {default}" if default else None)
    return parser.add_argument("--split", choices=choices, default=default, help=text)


def flag_overrides(args: argparse.Namespace, keys: dict[str, str]) -> list[str]:
    """``key=value`` config overrides of the flags that were given (``keys``: flag dest -> config
    key); values as JSON, so that a string stays a string whatever it holds."""
    return [f"{key}={json.dumps(getattr(args, dest))}" for dest, key in keys.items()
            if getattr(args, dest) is not None]
