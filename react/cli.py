"""``react``: one command for every job of the project.

    react COMMAND [ARGS ...]          react COMMAND --help shows the command's own flags

Each command hands its arguments to the ``main`` of the module that does the job (the table
below), so ``react train ...`` is ``python train.py ...``, ``react generate ...`` is
``python -m react.generate ...``, and so on. The shared flags are listed in
:mod:`react.utils.cli`.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from react import __version__


class Command(NamedTuple):
    target: str  # a module with main(argv) -> int, or scripts/<file>.py of the source checkout
    summary: str  # one line for `react --help`


Table = dict[str, "Command | Table"]

COMMANDS: Table = {
    "train": Command("react.train", "train or test a task from a YAML config (= train.py)"),
    "extract": Command("features.extract", "extract per-frame video and audio features of a dataset"),
    "generate": Command("react.generate", "generate a split's reactions with a trained checkpoint"),
    "evaluate": Command("evaluation.cli", "score a prediction folder with the official metrics "
                                          "(= evaluation.py)"),
    "baselines": Command("react.reaction.baselines", "write the REACT baselines (naive, Linear, NN) as "
                                                     "prediction folders"),
    "compare": Command("evaluation.compare", "score several prediction folders into one table"),
    "sweep": Command("react.reaction.sweep", "sweep the sampling scale of a checkpoint (diversity "
                                             "trade-off)"),
    "online": Command("react.reaction.online", "causal (online) generation of a split, scored"),
    "deploy": Command("react.reaction.deploy.export", "export a REGNN checkpoint and its backbones to a "
                                                      "deploy folder (ONNX)"),
    "convert": Command("react.reaction.official_regnn", "convert an official REGNN checkpoint (a "
                                                        "pickled module) to this project's format"),
    "infer": Command("react.reaction.infer", "reactions to one raw speaker clip (video + audio)"),
    "stages": Command("react.reaction.stages", "the four project stages: preproc, train, deploy, infer, all"),
    "viz": Command("react.reaction.viz.__main__", "pictures of reactions: clip plots and video, HTML report"),
    "data": {
        "check": Command("react.reaction.data.check", "check a dataset: missing or malformed files, counts"),
        "matrices": Command("react.reaction.data.matrices", "build or convert the appropriateness matrices"),
        "synth": Command("scripts/make_synthetic_react.py", "write a synthetic REACT or MARS dataset"),
        "synth-ravdess": Command("scripts/make_synthetic_ravdess.py",
                                 "write a synthetic RAVDESS-layout speech-emotion corpus"),
        "synth-ravdess-alt": Command("scripts/make_synthetic_ravdess_alt.py",
                                     "write a second, differently built synthetic RAVDESS corpus"),
        "synth-xroom": Command("scripts/make_synthetic_xroom.py",
                               "write synthetic Magic XRoom sessions (Shimmer + VR)"),
    },
    "ser": {
        "predict": Command("react.ser.predict", "speech emotion of wav files, a stream or the microphone"),
        "export": Command("react.ser.export", "export a speech-emotion checkpoint to ONNX"),
    },
    "tools": Command("react.tools.__main__", "the training tools on XRoom data: preprocess .. finetune, all"),
}

SOURCE_ROOT = Path(__file__).resolve().parent.parent  # holds scripts/ in a source checkout


def _summary(entry: Command | Table) -> str:
    return entry.summary if isinstance(entry, Command) else "commands: " + ", ".join(entry)


def usage(table: Table, prog: str) -> str:
    """The help of a command group: one line per command."""
    width = max(map(len, table)) + 2
    lines = [f"usage: {prog} COMMAND [ARGS ...]   ({prog} COMMAND --help: that command's flags)", "",
             "commands:"]
    lines += [f"  {name:<{width}}{_summary(entry)}" for name, entry in table.items()]
    return "\n".join(lines)


def load_main(target: str) -> Callable[[list[str]], int]:
    """The ``main`` of a module, or of a script of the source checkout (``scripts/*.py``)."""
    if not target.endswith(".py"):
        return importlib.import_module(target).main
    path = SOURCE_ROOT / target
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found (this command needs the project's source checkout, "
                                "installed with pip install -e .)")
    if str(path.parent) not in sys.path:  # a script may import its sibling scripts
        sys.path.insert(0, str(path.parent))
    module = sys.modules.get(path.stem)
    if module is not None and Path(getattr(module, "__file__", "")).resolve() == path.resolve():
        return module.main  # imported already: the same objects (worker processes pickle them by name)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module.main


def dispatch(table: Table, argv: list[str], prog: str) -> int:
    """Run the command that ``argv`` names, handing it the rest of ``argv``."""
    if not argv or argv[0] in ("-h", "--help"):
        print(usage(table, prog), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    if prog == "react" and argv[0] == "--version":
        print(f"react {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    entry = table.get(name)
    if entry is None:
        print(f"{prog}: error: unknown command '{name}'; commands: {', '.join(table)}", file=sys.stderr)
        return 2
    if isinstance(entry, dict):
        return dispatch(entry, rest, f"{prog} {name}")
    try:
        main = load_main(entry.target)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return main(rest)


def main(argv: list[str] | None = None) -> int:
    return dispatch(COMMANDS, sys.argv[1:] if argv is None else list(argv), "react")


if __name__ == "__main__":
    raise SystemExit(main())
