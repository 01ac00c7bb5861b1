"""The tests' forked commands (zygote.py) answer as a fresh interpreter does, and survive a command that hangs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import TINY, Zygote, _command_env, rdpg, zygote_for
from zygote import runs_forked

BASE = {"PATH": "/usr/bin:/bin", "HOME": "/root", "PYTHONUNBUFFERED": "1"}  # the zygote's, as started


@pytest.mark.parametrize(("args", "env", "forked"), [
    (["train", "--preset", "pendulum"], {}, True),
    (["evaluate", "run"], {"PYTHONPATH": "/somewhere"}, True),  # sys.path is set per command
    (["presets"], {}, False),  # never imports TensorFlow: a fresh start is what it is measured on
    (["train", "--preset", "pendulum", "--verbose"], {}, False),  # TensorFlow's start-up log
    (["train", "--preset", "pendulum", "-qv"], {}, False),
    (["train", "--preset", "pendulum"], {"COLUMNS": "80"}, False),  # read when the consoles are made
    (["export"], {"TF_NUM_INTRAOP_THREADS": "3"}, False),  # read when TensorFlow starts
    (["export"], {"TF_CPP_MIN_LOG_LEVEL": "0"}, False),  # TensorFlow's start-up log shown
    (["export"], {"TF_CPP_MIN_LOG_LEVEL": "3"}, True),  # what rdpg sets where it is unset
    (["train", "--preset", "pendulum"], {"RDPG_TESTS_FRESH": "1"}, False),
])
def test_only_commands_a_fork_runs_as_a_fresh_interpreter_would_are_forked(args, env, forked):
    assert runs_forked(args, {**BASE, **env}, BASE) == forked


@pytest.mark.parametrize("args", [
    ["train", "--preset", "pendulum", "--bogus"],  # a usage error names the program
    ["train", "--preset", "no-such-preset"],
    ["evaluate", "missing.h5"],
])
def test_a_forked_command_answers_as_a_fresh_one(tmp_path, args):
    zygote = zygote_for()
    sent = zygote.commands if zygote else 0
    forked = rdpg(*args, cwd=tmp_path, check=False)
    # This command, not an earlier one (the test process's environment, changed by an in-process command,
    # once sent every later command to a fresh interpreter).
    now = zygote_for()
    assert now and now.commands == (sent + 1 if now is zygote else 1), "not sent to the zygote"
    fresh = rdpg(*args, cwd=tmp_path, check=False, fresh=True)
    assert (forked.returncode, forked.stdout, forked.stderr) == (fresh.returncode, fresh.stdout, fresh.stderr)
    assert forked.returncode == 2


def test_a_command_past_its_timeout_is_killed_and_the_next_one_runs(tmp_path):
    with pytest.raises(subprocess.TimeoutExpired):
        rdpg("train", "--preset", "pendulum", "--steps", "100000", *TINY, "--run-dir", "long", cwd=tmp_path,
             timeout=3)
    result = rdpg("evaluate", "missing.h5", cwd=tmp_path, check=False)
    assert result.returncode == 2 and "missing.h5" in result.stderr


def test_a_zygote_of_other_start_up_settings_answers_as_a_fresh_interpreter_with_them(tmp_path):
    """``own_zygote``: a narrow console (read when the consoles are made) gets a zygote of its own; a message
    longer than its 80 columns comes out as a fresh interpreter with that console prints it."""
    (tmp_path / "notes.h5").write_text("not a checkpoint\n" * 10)
    narrow = {"COLUMNS": "80", "TERM": "dumb"}
    zygote = zygote_for(narrow)
    sent = zygote.commands if zygote else 0
    forked = rdpg("evaluate", "notes.h5", cwd=tmp_path, check=False, env=narrow, own_zygote=True)
    now = zygote_for(narrow)
    assert now and now is not zygote_for() and now.commands == (sent + 1 if now is zygote else 1)
    fresh = rdpg("evaluate", "notes.h5", cwd=tmp_path, check=False, env=narrow, fresh=True)
    assert (forked.returncode, forked.stdout, forked.stderr) == (fresh.returncode, fresh.stdout, fresh.stderr)
    assert forked.returncode == 2 and len(forked.stderr.strip()) > 80 and forked.stderr.count("\n") == 1


def _processes_working_in(folder: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cwd").resolve() == folder:
                found.append(int(entry.name))
        except OSError:  # gone meanwhile, or another user's
            pass
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the kernel's parent-death signal is Linux's")
def test_a_zygote_killed_mid_command_takes_the_command_with_it(tmp_path):
    """A zygote its client kills (a test stopped while it waited for a reply) leaves no command running on.
    (One that has not imported TensorFlow first: the command is killed while it does, seconds sooner.)"""
    zygote = Zygote(_command_env(), bare=True)
    try:
        request = {"args": ["train", "--preset", "pendulum", "--steps", "100000", *TINY, "--run-dir", "run", "-q"],
                   "cwd": str(tmp_path.resolve()), "env": _command_env(), "stdout": os.devnull,
                   "stderr": os.devnull, "timeout": 300}
        zygote.process.stdin.write(json.dumps(request) + "\n")
        zygote.process.stdin.flush()
        deadline = time.monotonic() + 60
        while not _processes_working_in(tmp_path.resolve()):
            assert time.monotonic() < deadline and zygote.process.poll() is None, "the command never started"
            time.sleep(0.05)
    finally:
        zygote.close(kill=True)
    deadline = time.monotonic() + 10
    while _processes_working_in(tmp_path.resolve()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _processes_working_in(tmp_path.resolve())
