"""The `react` command: every job under one name, each command's own help, one flag vocabulary,
bad input exits 2."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from react import cli
from react.utils.cli import SPLITS

ROOT = Path(__file__).resolve().parents[1]


def leaves(table=cli.COMMANDS, path=()):
    """(("data", "check"), Command(...)), ... for every runnable command."""
    for name, entry in table.items():
        if isinstance(entry, dict):
            yield from leaves(entry, (*path, name))
        else:
            yield (*path, name), entry


def run(argv, capsys):
    """rc, stdout, stderr of `react ARGV` in this process."""
    try:
        rc = cli.main(argv)
    except SystemExit as done:  # argparse's --help and usage errors
        rc = done.code
    out, err = capsys.readouterr()
    return rc, out, err


def test_react_help_lists_every_command_on_one_line(capsys):
    rc, out, _ = run(["--help"], capsys)
    assert rc == 0 and out.startswith("usage: react COMMAND")
    for name in ("train", "extract", "generate", "evaluate", "baselines", "compare", "sweep", "online",
                 "deploy", "infer", "stages", "viz", "tools"):
        assert re.search(rf"^  {name} +{re.escape(cli.COMMANDS[name].summary)}$", out, re.M), name
    assert re.search(r"^  data +commands: check, matrices, synth, ", out, re.M)
    assert re.search(r"^  ser +commands: predict, export$", out, re.M)
    rc, out, _ = run(["data", "--help"], capsys)
    assert rc == 0 and re.search(r"^  synth +write a synthetic REACT or MARS dataset$", out, re.M)


def test_unknown_or_missing_command_exits_2(capsys):
    rc, _, err = run(["trian"], capsys)
    assert rc == 2 and err.strip() == ("react: error: unknown command 'trian'; commands: "
                                       + ", ".join(cli.COMMANDS))
    rc, _, err = run(["ser", "fit"], capsys)
    assert rc == 2 and "react ser: error: unknown command 'fit'; commands: predict, export" in err
    rc, _, err = run([], capsys)
    assert rc == 2 and err.startswith("usage: react COMMAND")


@pytest.mark.slow
def test_python_dash_m_react_and_the_console_script():
    done = subprocess.run([sys.executable, "-m", "react", "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "react 0.1.0"
    assert 'react = "react.cli:main"' in (ROOT / "pyproject.toml").read_text()
    for target in {c.target for _, c in leaves() if c.target.endswith(".py")}:
        assert (ROOT / target).is_file(), target


@pytest.mark.slow
def test_train_py_and_evaluation_py_are_the_react_commands(capsys):
    for script, command in (("train.py", "train"), ("evaluation.py", "evaluate")):
        done = subprocess.run([sys.executable, str(ROOT / script), "--help"], capture_output=True, text=True)
        assert done.returncode == 0 and done.stdout == run([command, "--help"], capsys)[1]


RENAMED = r"--save-dir|--data-root|--features-root|--pred |(?<!--data-dir )\bDATA_DIR\b"  # the old spellings


@pytest.mark.parametrize("path", [p for p, _ in leaves()], ids=" ".join)
def test_every_command_has_its_help_in_one_vocabulary(path, capsys):
    """Each command's own help; --data-dir, --out-dir, --out, --pred-dir, every --split with the same
    choices."""
    rc, text, _ = run([*path, "--help"], capsys)
    assert rc == 0 and text.startswith(f"usage: react {' '.join(path)} ")
    texts = [text]
    subcommands = re.search(r"\{([\w,-]+)\} \.\.\.$", texts[0].split("\n\n")[0], re.M)
    if subcommands:  # viz, data matrices
        texts = [run([*path, sub, "--help"], capsys)[1] for sub in subcommands.group(1).split(",")]
    for text in texts:
        usage = " ".join(text.split("\n\n")[0].split())
        assert not re.search(RENAMED, usage) or path == ("viz",) and "--pred PRED" in usage, usage
        for choices in re.findall(r"--split \{([\w,]+)\}", usage):
            assert choices.split(",") in (list(SPLITS), [*SPLITS, "all"]), usage
        # an output folder is --out-dir; --out only names a file
        for line in re.findall(r"^  --out OUT\s+(.*)$", text, re.M):
            assert "folder" not in line and "dir" not in line, line


def bad_inputs(tmp: Path) -> dict[tuple[str, ...], list[str]]:
    """Every command with a path that is not there (a dataset, checkpoint, config, clip...)."""
    no = str(tmp / "nowhere")
    tiny = str(ROOT / "configs" / "regnn_tiny.yaml")
    return {
        ("train",): ["--config", tiny, "--data-dir", no, "--out-dir", str(tmp / "run")],
        ("extract",): ["--split", "test", "--type", "audio", "--data-dir", no, "audio.kind=logmel"],
        ("generate",): ["--checkpoint", no, "--pred-dir", str(tmp / "p")],
        ("evaluate",): ["--data-dir", no, "--pred-dir", no],
        ("baselines",): ["--data-dir", no, "--out-dir", str(tmp / "o")],
        ("compare",): ["--data-dir", no, "--pred-dir", f"A={no}", "--out-dir", str(tmp / "o")],
        ("sweep",): ["--checkpoint", no, "--scales", "1", "--out-dir", str(tmp / "o")],
        ("online",): ["--checkpoint", no, "--pred-dir", str(tmp / "p")],
        ("deploy",): ["--checkpoint", no, "--features", f"{no}.yaml", "--out-dir", str(tmp / "o")],
        ("convert",): ["--checkpoint", no, "--out-dir", str(tmp / "o")],
        ("infer",): ["--deploy", no, "--video", f"{no}.mp4", "--audio", f"{no}.wav",
                     "--out-dir", str(tmp / "o")],
        ("stages",): ["preproc", "--config", f"{no}.yaml"],
        ("viz",): ["clip", "--pred", no, "--out-dir", str(tmp / "o")],
        ("data", "check"): ["--data-dir", no],
        ("data", "matrices"): ["emotion", "--data-dir", no],
        ("data", "synth"): ["--out-dir", str(tmp / "d"), "--frames", "10", "--no-media"],
        ("data", "synth-ravdess"): ["--out-dir", str(tmp / "d"), "--actors", "0"],
        ("data", "synth-ravdess-alt"): ["--out-dir", str(tmp / "d"), "--actors", "0"],
        ("data", "synth-xroom"): ["--out-dir", str(tmp / "d"), "--participants", "0"],
        ("ser", "predict"): [f"{no}.wav", "--checkpoint", no],
        ("ser", "export"): ["--checkpoint", no, "--out", str(tmp / "ser.onnx")],
        ("tools",): ["preprocess", "--data-dir", no, "--out-dir", str(tmp / "o")],
    }


def test_bad_input_exits_2_with_one_line_everywhere(tmp_path, capsys):
    cases = bad_inputs(tmp_path)
    assert set(cases) == {path for path, _ in leaves()}  # every command is probed
    for path, args in cases.items():
        rc, _, err = run([*path, *args], capsys)
        assert rc == 2, (path, err)
        assert "Traceback" not in err and "error" in err.strip().splitlines()[-1].lower(), (path, err)
        if path in (("train",), ("tools",)):  # --data-dir set data.root / dataset.root
            assert str(tmp_path / "nowhere") in err, err


def test_a_script_command_keeps_an_imported_script_module(capsys):
    """`react data synth` reuses the generator module that was imported already, so its functions
    stay the objects that worker processes pickle by name (a second copy broke them)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import make_synthetic_react

    assert run(["data", "synth", "--help"], capsys)[0] == 0
    assert sys.modules["make_synthetic_react"] is make_synthetic_react
