"""Two-process runs through ``accelerate launch`` and the comparison of their outputs with a 1-process run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]


def launch_two_processes(port: int, *args: str, cwd: Path = ROOT, timeout: int = 300
                         ) -> subprocess.CompletedProcess:
    """``accelerate launch`` of ``args`` (a script, or ``-m module``, and its arguments) in 2 CPU
    processes (``--multi_gpu`` is DDP over gloo without CUDA), one thread each, offline; the run must
    succeed."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", str(port), *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def assert_same_files(a: Path, b: Path) -> list[Path]:
    """The same file names under ``a`` and ``b``, equal tensors in ``.pth`` files and equal JSON in
    the others; returns the names (relative)."""
    names = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for name in names:
        if name.suffix == ".pth":
            assert torch.equal(torch.load(a / name), torch.load(b / name)), name
        else:
            assert json.loads((a / name).read_text()) == json.loads((b / name).read_text()), name
    return names
