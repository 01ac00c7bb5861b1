"""The command line where its surroundings fail: stdout closed or on a full disk, an ASCII-only stdout, odd
COLUMNS, stderr closed, names the file system refuses, SIGTERM and SIGHUP. One line and an honest exit status,
never a traceback, and nothing of the user's lost."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import h5py
import pytest

from conftest import TINY, drop_a_stop_signal, rdpg, rdpg_command, signal_lost_in_c_code

LONG_NAME = "a" * 300  # one path component over the usual 255-byte limit


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hostile")
    rdpg("train", "--preset", "pendulum", "--steps", "250", *TINY, "--run-dir", "run", "-q", cwd=folder)
    return folder / "run"


def _rdpg_into(stdout: int, *args: str | Path, cwd: Path, env: dict[str, str] | None = None
               ) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rdpg_cli", *map(str, args)], cwd=cwd, stdout=stdout,
                          stderr=subprocess.PIPE, text=True, timeout=600, env={**os.environ, **(env or {})})


def _closed_pipe() -> int:
    """The write end of a pipe whose reader is already gone."""
    read, write = os.pipe()
    os.close(read)
    return write


@pytest.mark.parametrize("args", [["presets"], ["presets", "-q"], ["presets", "show", "pendulum"]])
def test_a_closed_pipe_ends_a_command_quietly_with_sigpipes_status(tmp_path, args):
    """`rdpg presets | head -1` whose output outgrew the pipe's buffer ended in a BrokenPipeError traceback."""
    write = _closed_pipe()
    try:
        result = _rdpg_into(write, *args, cwd=tmp_path)
    finally:
        os.close(write)
    assert result.returncode == 128 + signal.SIGPIPE, result.stderr
    assert result.stderr == "", result.stderr


def test_a_closed_pipe_after_an_evaluation_is_not_a_traceback(tmp_path, run):
    write = _closed_pipe()
    try:
        result = _rdpg_into(write, "evaluate", run, "--episodes", "1", "--json", cwd=tmp_path)
    finally:
        os.close(write)
    assert result.returncode == 128 + signal.SIGPIPE, result.stderr
    assert "Traceback" not in result.stderr, result.stderr


def test_stdout_on_a_full_disk_is_one_line_and_a_finished_run_is_kept(tmp_path):
    """A log on a full disk: the one-line error names stdout, not the run folder (which was blamed, and the run
    stopped without its checkpoint), and the run is complete."""
    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full")
    with open("/dev/full", "w") as full:
        presets = _rdpg_into(full.fileno(), "presets", cwd=tmp_path)
        train = _rdpg_into(full.fileno(), "train", "--preset", "pendulum", "--steps", "150", *TINY,
                           "--run-dir", "run", "-q", cwd=tmp_path)
    assert presets.returncode == 1
    assert presets.stderr == "error: stdout cannot be written (No space left on device)\n"
    assert train.returncode == 1
    assert train.stderr == "stdout cannot be written (No space left on device); the run finished at env step 150\n"
    with h5py.File(tmp_path / "run" / "checkpoint.h5", "r") as f:
        assert int(f.attrs["env_steps"]) == 150


def test_an_ascii_only_stdout_prints_what_it_can(tmp_path, run):
    """The evaluation table's '±' ended `rdpg evaluate` with a UnicodeEncodeError and the result lost."""
    result = rdpg("evaluate", run, "--episodes", "1", cwd=tmp_path, env={"PYTHONIOENCODING": "ascii"})
    assert "mean ? std" in result.stdout, result.stdout


@pytest.mark.parametrize("columns", ["0", "99999999", "wide"])
def test_an_unusable_columns_value_is_ignored(tmp_path, columns):
    """COLUMNS=0 printed nothing at all (results lost); a width of millions padded the help to gigabytes."""
    result = rdpg("presets", cwd=tmp_path, env={"COLUMNS": columns})
    assert "pendulum" in result.stdout and len(result.stdout) < 10_000, len(result.stdout)


def test_a_closed_stderr_does_not_stop_a_command(tmp_path, run):
    """Hiding TensorFlow's start-up lines duplicated fd 2, which failed when it was closed (`2>&-`)."""
    result = subprocess.run(f"{sys.executable} -m rdpg_cli evaluate {run} --episodes 1 --json 2>&-", shell=True,
                            cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0 and '"mean_return"' in result.stdout, result


@pytest.mark.parametrize("closed", [">&-", ">&- 2>&- <&-"], ids=["stdout", "all-three"])
def test_a_stream_closed_from_the_start_drops_its_output_and_the_run_is_whole(tmp_path, closed):
    """With fd 1 closed (a service manager, `>&-`) Python leaves sys.stdout None: every command ended in an
    AttributeError traceback, and `rdpg train` left a run folder holding only its lock."""
    listing = subprocess.run(f"{sys.executable} -m rdpg_cli presets {closed}", shell=True, cwd=tmp_path,
                             capture_output=True, text=True, timeout=600)
    assert listing.returncode == 0 and listing.stderr == "", listing
    train = subprocess.run(f"{sys.executable} -m rdpg_cli train --preset pendulum --steps 40 {shlex.join(TINY)} "
                           f"--run-dir run -q {closed}", shell=True, cwd=tmp_path, capture_output=True,
                           text=True, timeout=600)
    assert train.returncode == 0 and "Traceback" not in train.stderr, train
    with h5py.File(tmp_path / "run" / "checkpoint.h5", "r") as checkpoint:
        assert checkpoint.attrs["env_steps"] == 40


@pytest.mark.parametrize("args", [
    ["export", "{run}/checkpoint.h5", "--output", LONG_NAME],
    ["export", "{run}/checkpoint.h5", "--format", "tflite", "--output", f"{LONG_NAME}.tflite"],
    ["plot", "{run}", "--output", f"{LONG_NAME}.png"],
    ["evaluate", "{run}", "--video", f"{LONG_NAME}.gif"],
])
def test_an_output_name_too_long_for_the_file_system_is_one_line(tmp_path, run, args):
    result = rdpg(*(a.format(run=run) for a in args), cwd=tmp_path, check=False)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.rstrip().endswith(": File name too long"), result.stderr


def _signal_after(args: list[str | Path], cwd: Path, signum: int, ready: Callable[[], bool]
                  ) -> subprocess.CompletedProcess:
    """Run ``rdpg ARGS`` and send it ``signum`` once ``ready()`` holds."""
    # SIGHUP as a terminal would leave it, even where the suite runs under nohup (which ignores it, and rdpg
    # keeps an ignored SIGHUP ignored).
    proc = subprocess.Popen(rdpg_command(*args, prelude="import signal\nsignal.signal(signal.SIGHUP, signal.SIG_DFL)"),
                            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not ready() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_sigterm_during_an_export_cleans_up(tmp_path, run):
    """Python's default SIGTERM ended the process on the spot, leaving a hidden temporary folder behind."""
    result = _signal_after(["export", run / "checkpoint.h5", "--output", tmp_path / "out" / "sm"], tmp_path,
                           signal.SIGTERM, (tmp_path / "out").exists)  # the folder is made once the model is
    assert result.returncode == 128 + signal.SIGTERM, result.stderr
    assert result.stderr.strip().endswith("aborted"), result.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("turned_into", [AttributeError, "ConfigError"])
def test_a_stop_signal_that_c_code_turned_into_another_error_still_aborts(capsys, command_line_signals,
                                                                          turned_into):
    """SIGTERM while an export traced its function ended in a SystemError/AttributeError traceback and exit
    status 1 (seen once in CI, timing-dependent); code that wraps what it catches as rdpg's own error (a
    "damaged checkpoint") made it a one-line error with that error's status. A command a stop signal reached
    ends as aborted, 128 + the signal."""
    import typer

    from rdpg_cli import errors
    from rdpg_cli.cli import user_errors

    from rdpg_cli.signals import interrupt_on_stop_signals, raised_interrupt

    error = getattr(errors, turned_into) if isinstance(turned_into, str) else turned_into
    with pytest.raises(typer.Exit) as ended, user_errors():
        signal_lost_in_c_code(signal.SIGTERM, error)
    assert ended.value.exit_code == 128 + signal.SIGTERM
    assert capsys.readouterr().err.strip() == "aborted"
    assert raised_interrupt() is None  # the command is over: a library caller's next call starts clean
    with pytest.raises(typer.Exit if error is not AttributeError else AttributeError) as next_one, user_errors():
        raise error("the next command: its own error, told as before")
    if error is not AttributeError:
        assert next_one.value.exit_code == error("").exit_code
    capsys.readouterr()
    with pytest.raises(typer.Exit) as ended, user_errors(verbose=True):
        signal_lost_in_c_code(signal.SIGTERM, error)
    shown = capsys.readouterr().err  # --verbose: what the signal was turned into, for a bug report
    assert ended.value.exit_code == 128 + signal.SIGTERM and "Traceback" in shown and "_type_spec" in shown
    assert shown.rstrip().endswith("aborted"), shown
    hook = sys.unraisablehook
    interrupt_on_stop_signals()  # a second command in the same process: the hook is not wrapped again
    assert sys.unraisablehook is hook


# A stop signal raised in a finalizer, where Python can only report its exception as "Exception ignored" and
# drop it (TensorFlow runs many finalizers and callbacks), right after the video's frames are written.
_SWALLOWED_STOP_AFTER_THE_FRAMES = """
import signal
from rdpg_cli import recording

class StopSignalInAFinalizer:
    def __del__(self):
        signal.raise_signal(signal.SIGTERM)

real_reply = recording.VideoRecorder._reply

def reply(self, expected):
    answer = real_reply(self, expected)
    if expected == "written":
        StopSignalInAFinalizer()  # made and freed at once
    return answer

recording.VideoRecorder._reply = reply
"""


def test_a_stop_signal_swallowed_on_the_way_stops_a_video_before_it_replaces_anything(tmp_path, run):
    """The evaluation went on, replaced the user's video with --force and ended with status 0, as if no stop
    had been asked for (and Python printed the dropped exception as a traceback)."""
    pytest.importorskip("imageio")
    (tmp_path / "v.gif").write_text("mine")
    result = subprocess.run(rdpg_command("evaluate", run, "--episodes", "1", "--video", "v.gif", "--force",
                                         prelude=_SWALLOWED_STOP_AFTER_THE_FRAMES),
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 128 + signal.SIGTERM, result.stderr
    assert result.stderr.strip() == "aborted", result.stderr
    assert [(p.name, p.read_text()) for p in tmp_path.iterdir()] == [("v.gif", "mine")]  # nor temporaries


def _rows_written(metrics: Path) -> bool:
    """Whether training has logged a row (its first env steps are done): the header alone comes before."""
    return metrics.exists() and len(metrics.read_text().splitlines()) > 1


def test_a_stop_signal_dropped_in_an_episode_stops_evaluate_after_it(run, monkeypatch, command_line_signals):
    """The evaluation ran every episode (minutes, for long ones) and printed its result with status 0."""
    from typer.testing import CliRunner

    from rdpg_cli import evaluation
    from rdpg_cli.cli import app

    real_step, steps = evaluation.checked_step, []

    def step_with_a_dropped_stop(*args, **kwargs):
        steps.append(1)
        if len(steps) == 1:
            drop_a_stop_signal()
        return real_step(*args, **kwargs)

    monkeypatch.setattr(evaluation, "checked_step", step_with_a_dropped_stop)
    result = CliRunner().invoke(app, ["evaluate", str(run), "--episodes", "3", "--json"])
    assert result.exit_code == 128 + signal.SIGTERM, result.output
    assert result.stdout == "" and result.stderr.strip() == "aborted", result.output
    assert len(steps) == 200  # the episode in progress ended, no other began


def test_a_stop_signal_one_command_ended_on_is_not_the_next_ones(tmp_path, monkeypatch, command_line_signals):
    """Two commands in one process (a library caller, CliRunner): the first ended on SIGTERM while its options
    were read; the second, a preset with an unknown environment, said "aborted" with 143 instead of its error."""
    from typer.testing import CliRunner

    from rdpg_cli import cli

    real = cli.configure_logging

    def stopped_once():
        monkeypatch.setattr(cli, "configure_logging", real)
        signal.raise_signal(signal.SIGTERM)

    monkeypatch.setattr(cli, "configure_logging", stopped_once)
    assert CliRunner().invoke(cli.app, ["presets"]).exit_code == 130  # Typer's, in a caller's own process
    (tmp_path / "p.yaml").write_text("env:\n  id: NoSuchEnv-v0\n")
    result = CliRunner().invoke(cli.app, ["presets", "show", str(tmp_path / "p.yaml")])
    assert result.exit_code == 2 and "unknown environment 'NoSuchEnv-v0'" in result.stderr, result.output


# Where a stop signal lands in a command's first few tenths of a second, as set-up run before the console
# script's code (``rdpg_cli.launch.main``): SIGNAL is the signal's number.
_EARLY_STOPS = {
    # Importing the command line (Typer, Rich, rdpg's modules): Ctrl-C printed Python's KeyboardInterrupt
    # traceback, SIGTERM killed the process without a word.
    "importing": "class StopOnImport:\n"
                 "    def find_spec(self, name, path=None, target=None):\n"
                 "        if name == 'rdpg_cli.plot':\n"
                 "            sys.meta_path.remove(self)\n"
                 "            signal.raise_signal(SIGNAL)\n"
                 "sys.meta_path.insert(0, StopOnImport())\n",
    # Typer building the command from the app, before its own handling: a traceback, exit status 1.
    "building": "import typer.main\nreal = typer.main.get_command\n"
                "def get_command(app):\n"
                "    signal.raise_signal(SIGNAL)\n"
                "    return real(app)\n"
                "typer.main.get_command = get_command\n",
    # Reading the options: Typer turned the KeyboardInterrupt into a silent exit status 130, whatever the signal.
    "reading options": "from rdpg_cli import cli\nreal = cli.configure_logging\n"
                       "def configure_then_stop():\n"
                       "    signal.raise_signal(SIGNAL)\n"
                       "    real()\n"
                       "cli.configure_logging = configure_then_stop\n",
}


@pytest.mark.parametrize("where", _EARLY_STOPS)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=["INT", "TERM", "HUP"])
def test_a_stop_signal_in_a_commands_first_moments_says_aborted_with_its_own_status(tmp_path, where, signum):
    prelude = ("import signal\n"
               # As a terminal leaves them, even where the suite runs in the background or under nohup.
               "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
               "signal.signal(signal.SIGHUP, signal.SIG_DFL)\n"
               f"{_EARLY_STOPS[where].replace('SIGNAL', str(int(signum)))}")
    result = subprocess.run(rdpg_command("train", "--preset", "pendulum", "--run-dir", "run", prelude=prelude),
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert (result.returncode, result.stderr) == (128 + signum, "aborted\n"), result
    assert list(tmp_path.iterdir()) == []


def test_sighup_stops_training_with_a_checkpoint(tmp_path):
    """Closing the terminal (SIGHUP) killed the run and lost everything since its last checkpoint."""
    result = _signal_after(["train", "--preset", "pendulum", "--steps", "100000", *TINY, "--run-dir", "run"],
                           tmp_path, signal.SIGHUP, lambda: _rows_written(tmp_path / "run" / "metrics.csv"))
    assert result.returncode == 128 + signal.SIGHUP, result.stderr
    assert "stopped by SIGHUP at env step" in result.stderr and "rdpg train --resume run" in result.stderr
    with h5py.File(tmp_path / "run" / "checkpoint.h5", "r") as f:
        assert int(f.attrs["env_steps"]) > 0
def test_a_librarys_python_warning_is_one_line_without_terminal_codes_and_pythons_form_with_verbose(monkeypatch):
    """gymnasium colours its warnings with terminal codes, even into a pipe, and Python adds the warning's
    source file and line: two lines with escape codes in a log file, among rdpg's one-line messages."""
    from rdpg_cli import cli

    monkeypatch.setattr(warnings, "formatwarning", warnings.formatwarning)  # restored after the test
    monkeypatch.setitem(cli._log_flags, "verbose", False)
    cli.one_line_warnings()
    message = "\x1b[33mWARN: The environment X-v0 is out of date.\nUpgrade to v1.\x1b[0m"
    assert warnings.formatwarning(message, DeprecationWarning, "/site/gymnasium/registration.py", 511) == \
        "warning: The environment X-v0 is out of date. Upgrade to v1.\n"
    monkeypatch.setitem(cli._log_flags, "verbose", True)
    assert "registration.py:511: DeprecationWarning" in warnings.formatwarning(
        message, DeprecationWarning, "/site/gymnasium/registration.py", 511)


class _WarningPendulum(gym.Wrapper):
    def __init__(self, **kwargs):
        warnings.warn("this environment is experimental", UserWarning, stacklevel=2)
        super().__init__(gym.make("Pendulum-v1"))


def test_an_environments_warning_is_shown_once_however_often_it_is_made():
    """make_env holds an environment's warnings back until it is made (a refusal stays one line); replayed,
    they lost Python's once-per-place memory and printed at every environment made (training, evaluation)."""
    from rdpg_cli.config import config_from_dict
    from rdpg_cli.envs import make_env

    gym.register("WarningPendulum-v0", entry_point=_WarningPendulum, max_episode_steps=200)
    config = config_from_dict({"env": {"id": "WarningPendulum-v0"}}, source="test")
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("default")
        for _ in range(3):
            make_env(config).close()
    assert [str(w.message) for w in shown] == ["this environment is experimental"]
