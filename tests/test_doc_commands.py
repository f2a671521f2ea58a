"""The commands the README and docs/*.md show run as written, at least as far as their help: the
first command of every fenced bash block runs with --help (in this process, once per entry point)
and every --flag it names is one its entry point has."""

import importlib
import re
from pathlib import Path

import pytest

from react import cli

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
STARTS = re.compile(r"(react|python|\.venv/bin/python|accelerate)\s")


def first_commands() -> list[tuple[str, str]]:
    """(file: line, command with its continuation lines joined) of every fenced bash block."""
    found = []
    for doc in DOCS:
        text = doc.read_text()
        for block in re.finditer(r"^```bash\n(.*?)^```", text, re.S | re.M):
            lines = block.group(1).splitlines()
            for i, line in enumerate(lines):
                if STARTS.match(line.strip()):
                    command = line.strip()
                    while command.endswith("\\") and i + 1 < len(lines):
                        i += 1
                        command = command[:-1] + " " + lines[i].strip()
                    number = text[:block.start(1)].count("\n") + i + 1
                    found.append((f"{doc.relative_to(ROOT)}:{number}", command.split(" #")[0]))
                    break
    return found


def entry_point(command: str) -> tuple[str, list[str]]:
    """``(target, words after it)``: ``react a b`` -> the cli table's leaf or group; ``python -m
    mod`` / ``accelerate launch ... -m mod`` -> the module; ``python file.py`` -> the file."""
    words = command.split()
    if words[0] == "react":
        node, path = cli.COMMANDS, []
        for word in words[1:]:
            if not isinstance(node, dict) or word not in node:
                break
            node, path = node[word], [*path, word]
        return " ".join(["react", *path]), words[1 + len(path):]
    if "-m" in words:
        at = words.index("-m")
        return words[at + 1], words[at + 2:]
    at = next(i for i, w in enumerate(words) if w.endswith(".py"))
    return words[at], words[at + 1:]


def help_of(target: str, capsys, sub: tuple[str, ...] = ()) -> str:
    """The --help text of an entry point (of its subcommand ``sub``), run in this process."""
    argv = [*sub, "--help"]
    if target == "react" or target.startswith("react "):
        call = lambda: cli.main([*target.split()[1:], *argv])  # noqa: E731
    elif target.endswith(".py"):
        call = lambda: cli.load_main(target)(argv)  # noqa: E731
    else:
        module = importlib.import_module(target)
        if not hasattr(module, "main"):  # a package run by its __main__
            module = importlib.import_module(f"{target}.__main__")
        call = lambda: module.main(argv)  # noqa: E731
    try:
        rc = call()
    except SystemExit as done:
        rc = done.code
    out, err = capsys.readouterr()
    assert rc == 0, f"{target} --help: exit {rc}\n{err}"
    return out


COMMANDS = first_commands()


def test_every_doc_block_with_a_command_is_found():
    assert len(COMMANDS) >= 20
    assert {doc.split(":")[0] for doc, _ in COMMANDS} >= {"README.md", "docs/stages.md", "docs/baselines.md"}


@pytest.mark.parametrize("target", sorted({entry_point(c)[0] for _, c in COMMANDS}))
def test_documented_commands_run_with_help_and_know_their_flags(target, capsys):
    text = help_of(target, capsys)
    subcommands = re.search(r"\{([\w,-]+)\} \.\.\.$", text.split("\n\n")[0], re.M)  # argparse subparsers
    for doc, command in COMMANDS:
        found, rest = entry_point(command)
        if found != target:
            continue
        if subcommands and rest and rest[0] in subcommands.group(1).split(","):
            text = help_of(target, capsys, (rest[0],))
        for flag in re.findall(r"(?<![\w-])--[a-z][\w-]*", " ".join(rest)):
            assert re.search(rf"(?<![\w-]){flag}(?![\w-])", text), f"{doc}: {command}: {target} has no {flag}"


def test_scripts_named_in_docs_exist():
    for doc, command in COMMANDS:
        target, _ = entry_point(command)
        if target.endswith(".py"):
            assert (ROOT / target).is_file(), f"{doc}: {target} not found"
