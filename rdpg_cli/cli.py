"""The ``rdpg`` command line: thin Typer commands over the library.

TensorFlow is imported inside the commands that need it, never at module load, so ``rdpg --help`` and
``rdpg presets`` stay fast; its start-up log noise is hidden unless ``--verbose``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler

from rdpg_cli import __version__
from rdpg_cli.errors import RdpgError, one_line
from rdpg_cli.output import (STDOUT, StdoutFailed, emit, open_closed_standard_streams, sane_columns, silence_stdout,
                             stdout_to_stderr, tolerant_encoding)
from rdpg_cli.plot import DEFAULT_METRIC, METRIC_LABELS, Band

try:  # Typer >= 0.22 vendors click; older releases depend on it.
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover
    from click import exceptions as click_exceptions

app = typer.Typer(
    name="rdpg",
    help="Train, evaluate and export DDPG/RDPG agents whose actors stay in bounds by inverting gradients.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)
presets_app = typer.Typer(help="List the shipped presets (name, environment, description), or show one.",
                          invoke_without_command=True)
app.add_typer(presets_app, name="presets")

sane_columns()  # before any console reads it
# Writes through STDOUT raise StdoutFailed (Rich alone would exit with status 1 on the spot when stdout's
# reader has gone, ending a training run without its checkpoint).
console = Console(file=STDOUT)
err_console = Console(stderr=True, soft_wrap=True)

_log_flags = {"verbose": False, "quiet": False}


class LogHandler(RichHandler):
    """Rich's log handler: level column, colours and wrapping on a terminal. Off a terminal (a log file, a
    pipe) Rich would still wrap at 80 columns and pad every line with spaces, so there each record is one
    plain line, ``level: message``."""

    def emit(self, record: logging.LogRecord) -> None:
        if self.console.is_terminal:
            super().emit(record)
            return
        try:
            # Lower case, as rdpg's own "error:" and "warning:" lines.
            self.console.print(f"{record.levelname.lower()}: {self.format(record)}", soft_wrap=True, markup=False,
                               highlight=False)
        except Exception:
            self.handleError(record)


def configure_logging() -> None:
    """rdpg's own logger (``rdpg_cli.*``) writes through Rich's handler to stderr: set up once, its level set
    again by each command's --verbose (debug) / --quiet (warnings and errors only)."""
    logger = logging.getLogger("rdpg_cli")
    if not any(isinstance(h, LogHandler) for h in logger.handlers):
        # A console of its own: how errors are printed (err_console) is no concern of the log's layout.
        handler = LogHandler(console=Console(stderr=True), show_time=False, show_path=False, markup=False,
                             rich_tracebacks=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.propagate = False  # not twice when a library configures the root logger
    level = logging.DEBUG if _log_flags["verbose"] else logging.WARNING if _log_flags["quiet"] else logging.INFO
    logger.setLevel(level)


def _logging_flag(name: str, exclusive: bool = True):
    # An option callback runs for every command that takes the option (with its default when not given),
    # so --verbose / --quiet configure logging in one place instead of in each command's body.
    def callback(value: bool) -> bool:
        other = "quiet" if name == "verbose" else "verbose"
        # More detail and less at once: said rather than one picked silently. Not where the two flags mean
        # things that go together (`presets show`: the resolved preset, printed plain).
        if exclusive and value and _log_flags[other]:
            raise typer.BadParameter(f"not with --{other}: one asks for more detail, the other for less")
        _log_flags[name] = _log_flags[name] or bool(value)
        configure_logging()
        return value

    return callback


Verbose = Annotated[bool, typer.Option("--verbose", "-v",
                                       help="Show debug detail: TensorFlow's log, and a traceback with an error.",
                                       callback=_logging_flag("verbose"))]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print only results, warnings and errors.",
                                     callback=_logging_flag("quiet"))]


def _path(text: str) -> Path:
    """A path option's value. An empty one (an unset shell variable, ``--run-dir "$DIR"``) is refused: as a
    path it would mean the current folder, and ``rdpg train`` would write a run's files among the user's."""
    if text == "":
        raise typer.BadParameter("empty; give a path (. for the current folder)")
    return Path(text)


def _output_path(text: str) -> Path:
    """An output file's path (a video, an export, a figure): refused empty as ``_path`` is, without the hint
    of ``.``, which names a folder these refuse."""
    if text == "":
        raise typer.BadParameter("empty; give the path to write")
    return Path(text)


def _complete_preset(incomplete: str) -> list[str]:
    from rdpg_cli.config import shipped_presets

    return [name for name in shipped_presets() if name.startswith(incomplete)]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"rdpg {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[bool | None, typer.Option("--version", callback=_version, is_eager=True,
                                                 help="Print the version and exit.")] = None,
) -> None:
    """rdpg: recurrent deterministic policy gradients with inverting gradients."""
    # Runs before any subcommand's options are parsed: each invocation starts from the default log level,
    # and a flag given to a group (``rdpg presets -q show X``) is not undone by its subcommand's default.
    from rdpg_cli.signals import forget_raised_interrupt

    _log_flags.update(verbose=False, quiet=False)
    forget_raised_interrupt()  # a stop signal an earlier command in this process (a library caller's) ended on
    configure_logging()
    _fit_console_to_stdout()


# Off a terminal lines are as long as they are: Rich's table of `rdpg presets -v` is this wide at most.
PIPED_WIDTH = 1000


def _fit_console_to_stdout() -> None:
    """On a terminal (or with COLUMNS set) Rich fits what it prints to the width. Into a pipe or a log file it
    would wrap at 80 columns: a message broken mid-sentence defeats grep, a table cell's path ends in "…"."""
    piped = not console.is_terminal and "COLUMNS" not in os.environ
    console.soft_wrap = piped
    console.width = PIPED_WIDTH if piped else None


def load_tensorflow(verbose: bool) -> None:
    """Import TensorFlow with rdpg's thread pools, hiding its C++ and Python start-up logging unless asked
    for. Must run before anything else imports TensorFlow."""
    from rdpg_cli.threads import default_thread_pools

    default_thread_pools()
    if verbose:
        _import_tensorflow()
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import logging
    import warnings

    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    logging.getLogger("absl").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"(keras|tensorflow|gymnasium).*")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    # Some lines are written by C++ before any log level applies: silence fd 2 while TF loads.
    try:
        saved = os.dup(2)
    except OSError:  # stderr closed (`2>&-`): nothing to silence
        _import_tensorflow()
        return
    _SILENCED_STDERR.append(saved)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            _import_tensorflow()
    finally:
        _SILENCED_STDERR.remove(saved)
        os.dup2(saved, 2)
        os.close(saved)


def _import_tensorflow() -> None:
    """Import TensorFlow without letting Keras import matplotlib, which it imports (when installed) only for
    image-gallery helpers rdpg never calls: about 0.7 s of the 4.5 s import here. Keras takes the ImportError as "no
    matplotlib"; matplotlib imports normally afterwards (``rdpg plot``)."""
    blocked = [name for name in ("matplotlib", "matplotlib.pyplot") if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]  # import -> ImportError
    try:
        import tensorflow  # noqa: F401
    finally:
        for name in blocked:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]


# The real stderr while load_tensorflow silences fd 2: where a note to the user (a signal's) must still go.
_SILENCED_STDERR: list[int] = []


def note(text: str) -> None:
    """One plain line on stderr (no Rich markup: it may quote a path), also while TensorFlow loads."""
    try:
        if _SILENCED_STDERR:
            os.write(_SILENCED_STDERR[0], (one_line(text) + "\n").encode())
        else:
            err_console.print(text, markup=False, highlight=False, soft_wrap=True)
    except OSError:  # stderr closed, or a terminal that hung up (SIGHUP): the note is lost, not the run
        pass


def _unsuppress_contexts(exc: BaseException) -> None:
    """Show every exception an error was turned from (``raise ... from None`` hides them), down the whole
    chain: a failing environment's error is re-raised twice on its way out of ``rdpg train``, and its own
    frames (the user's code) are what --verbose is asked for."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        current.__suppress_context__ = False
        current = current.__cause__ or current.__context__


@contextmanager
def user_errors(verbose: bool = False):
    """Project errors -> one line on stderr and their exit code; a traceback only with --verbose."""
    from rdpg_cli.signals import forget_raised_interrupt, raised_interrupt

    try:
        yield
    except KeyboardInterrupt as exc:  # rdpg train handles its own (a checkpoint to write or to point at)
        from rdpg_cli.signals import exit_code_of

        note("aborted")
        raise typer.Exit(exit_code_of(exc)) from None
    except (typer.Exit, typer.Abort, click_exceptions.ClickException):  # already the outcome the user sees
        raise
    except Exception as exc:
        # A stop signal's Interrupted can come out of the code it interrupted as another error: C code
        # (TensorFlow tracing an export's function gave a SystemError, then an AttributeError), or code that
        # wraps what it catches as one of rdpg's errors (a checkpoint "damaged", an environment "failed").
        # The user's stop is what happened.
        signum = raised_interrupt()
        if signum is not None:
            if verbose:  # what the signal was turned into, for a bug report
                _print_traceback(exc)
            note("aborted")
            raise typer.Exit(128 + signum) from None
        if not isinstance(exc, RdpgError):
            raise
        from rich.markup import escape  # the message quotes user input: '[x]' or ':x:' must print as typed

        if verbose:  # for a bug report: where it was raised, and the exceptions it was turned from
            _unsuppress_contexts(exc)
            _print_traceback(exc)

        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, markup=True, emoji=False,
                          soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None
    finally:
        forget_raised_interrupt()  # this command's: not a library caller's next one


def _print_traceback(exc: BaseException) -> None:
    import traceback

    sys.stderr.write("".join(traceback.format_exception(exc)))


def _parse_sets(values: list[str] | None) -> dict:
    from rdpg_cli.config import parse_override

    overrides = {}
    for text in values or []:
        key, value = parse_override(text)
        overrides[key] = value
    return overrides


# ------------------------------------------------------------------------------------------------ train


@app.command()
def train(
    preset: Annotated[str | None, typer.Option("--preset", "-p", help="Shipped preset name or YAML path.",
                                               autocompletion=_complete_preset)] = None,
    steps: Annotated[int | None, typer.Option(help="Total env steps of the run (train.steps).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed (train.seed).")] = None,
    run_dir: Annotated[Path | None, typer.Option(
        "--run-dir", parser=_path, metavar="<path>",
        help="Run folder (default runs/<name>/<stamp>, name: the preset's).")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a key: section.key=value (repeat).")
                    ] = None,
    resume: Annotated[Path | None, typer.Option(
        parser=_path, metavar="<path>", help="Continue a run: its checkpoint.h5 or run folder.")] = None,
    force: Annotated[bool, typer.Option(help="Start over in a --run-dir that already holds a run.")] = False,
    eager: Annotated[bool, typer.Option(help="Run the update eagerly (debugging; slow).")] = False,
    verbose: Verbose = False,
    quiet: Quiet = False,
) -> None:
    """Train an agent from a preset; writes config.yaml, command.txt, metrics.csv, timing.csv, TensorBoard
    events, checkpoint.h5 and (from the first evaluation every train.eval_every env steps) best.h5 into the run
    folder."""
    from rdpg_cli.signals import FinishedRunStop

    with user_errors(verbose):
        try:
            code = _train(preset, steps, seed, run_dir, set_, resume, force, eager, quiet, verbose)
        except FinishedRunStop:  # a signal once the run had finished, during its summary: every file is written
            code = 0
    if code:
        raise typer.Exit(code)


def _train(preset, steps, seed, run_dir, set_, resume, force, eager, quiet, verbose) -> int:
    from rdpg_cli.config import ConfigError, inert_settings, key_locator, load_config, parse_override

    if steps is not None and steps <= 0:
        raise ConfigError(f"--steps: {steps} must be > 0")
    if seed is not None and not 0 <= seed < 2**32:  # as train.seed: 32-bit words for numpy's SeedSequence
        raise ConfigError(f"--seed: {seed} must be in [0, 2**32)")
    overrides = _parse_sets(set_)
    options = (("train.steps", "--steps", steps), ("train.seed", "--seed", seed))
    for key, option, value in options:  # a new run's or a resumed one's
        given = overrides.get(key)
        # Which one was meant cannot be told. (A YAML true or false is no number, though Python says 1 == True.)
        if value is not None and key in overrides and (isinstance(given, bool) or given != value):
            typed = next(text.partition("=")[2] for text in reversed(set_) if parse_override(text)[0] == key)
            raise ConfigError(f"{option} {value} and --set {key}={typed} disagree; give one of them")
    if resume is None:
        if preset is None:
            raise ConfigError("give --preset NAME|PATH (see 'rdpg presets'), or --resume RUN")
        flags = {}  # keys given by their own options, named as typed
        for key, option, value in options:
            if value is not None:
                overrides[key], flags[key] = value, option
        config = load_config(preset, overrides, flags)
        locate = key_locator(preset, overrides, flags)
        warnings = tuple(f"warning: {locate(ConfigError(text))}" for text in inert_settings(config))
        return _run_training(config, run_dir, None, force, eager, quiet, verbose, locate=locate, warnings=warnings)
    if run_dir is not None:
        raise ConfigError("--run-dir: a resumed run continues in its own folder; leave --run-dir out")
    if force:
        raise ConfigError("--force: a resumed run continues its own files, it replaces none; leave --force out")
    from rdpg_cli.checkpoint import checked_training_state, config_from_checkpoint, find_checkpoint, read_checkpoint
    from rdpg_cli.errors import CheckpointError

    from rdpg_cli.runs import RunLock, require_logs_of_this_run, require_run_entries, require_writable

    RunLock.check_free(resume)
    RunLock.check_free(resume.parent)
    checkpoint = find_checkpoint(resume)
    latest = checkpoint.parent / "checkpoint.h5"
    if not (latest.exists() and latest.samefile(checkpoint)):
        # A resumed run continues in the checkpoint's folder, writes its checkpoint.h5 and cuts metrics.csv
        # back to the resumed step: from best.h5 (or another file) that would throw the run's later progress
        # away. Only the folder's own latest state resumes in place. (A file that is no checkpoint says so.)
        read_checkpoint(checkpoint, with_replay=False)
        raise ConfigError(f"--resume {resume}: only a run's checkpoint.h5 resumes in its folder; resuming from "
                          f"{checkpoint.name} would rewind the run there and overwrite it (copy it into a new "
                          "folder as checkpoint.h5 to train on from it)")
    require_writable(checkpoint.parent, f"--resume {resume}")
    read_state = _file_state(checkpoint)  # compared again under the run's lock, before anything is written
    folder, data = checkpoint.parent, read_checkpoint(checkpoint, with_replay=True)
    try:  # now: its counters decide what happens next (a run already at its budget only says so)
        state = checked_training_state(data)
    except CheckpointError as exc:
        raise CheckpointError(f"{resume}: {exc}") from None
    config = config_from_checkpoint(data, str(resume))
    announced_steps = _require_folder_config(folder / "config.yaml", config, resume)
    require_run_entries(folder)
    _require_best_of_this_run(folder / "best.h5", config, resume)
    require_logs_of_this_run(folder, state, with_replay=data.replay is not None)
    # Given --steps, a --set train.steps of the same value is that budget, not the run's (checked above).
    _require_sets_of_the_run({k: v for k, v in overrides.items() if not (k == "train.steps" and steps is not None)},
                             config)
    if preset is not None:  # with the --set values, the command line the run started with
        from rdpg_cli.envs import resolve_bounds

        given, _ = resolve_bounds(load_config(preset, overrides))
        mine = config.to_dict()
        theirs = given.to_dict()
        for d in (mine, theirs):
            d["train"].pop("steps")
            d.pop("name")
        if mine != theirs:
            raise ConfigError(f"--preset {preset}: conflicts with the config of the run being resumed "
                              f"({folder}); leave --preset out")
    if seed is not None and seed != config.train.seed:
        raise ConfigError(f"--seed {seed}: the run being resumed uses seed {config.train.seed}")
    if steps is not None:
        config = config.replace("train", source="--steps", steps=steps)
    elif announced_steps is not None:
        # A session that extended the budget writes config.yaml at its start: if it stopped before its first
        # checkpoint, the budget it announced is still the run's.
        config = config.replace("train", steps=announced_steps)
    warnings = ()
    env_steps = data.counters["env_steps"]
    if env_steps > 0 and not os.path.lexists(folder / "metrics.csv"):
        # Deleted or moved away: the resumed run starts a new one, holding only its own rows.
        warnings = (f"warning: {folder / 'metrics.csv'} is missing: a new one starts at env step {env_steps}, "
                    "without the rows before",)
    return _run_training(config, folder, data, False, eager, quiet, verbose, resume_source=str(resume),
                         resume_state=read_state, warnings=warnings)


def _require_sets_of_the_run(overrides: dict, config) -> None:
    """A resumed run keeps its config: ``--set`` values pass only where the run has them already (the command
    line it was started with, given again), as ``--preset`` and ``--seed`` do. Bounds left to the environment
    (``action_bounds.low=null``) are read from it, as when the run started."""
    from rdpg_cli.config import NOT_SET, ConfigError, apply_overrides, config_from_dict, value_at
    from rdpg_cli.envs import resolve_bounds
    from rdpg_cli.errors import EnvironmentSetupError

    if not overrides:
        return
    stored = config.to_dict()
    try:
        given = config_from_dict(apply_overrides(stored, overrides), source="--set")
        if any(key.startswith("action_bounds.") for key in overrides):
            given, _ = resolve_bounds(given)
        wanted = given.to_dict()
    except (ConfigError, EnvironmentSetupError):  # a value no run could have
        wanted = None
    if wanted == stored:
        return
    differing = next((key for key in overrides if wanted is None or value_at(wanted, key) != value_at(stored, key)),
                     next(iter(overrides)))
    has = value_at(stored, differing)
    raise ConfigError(f"--set {differing}: a resumed run keeps its config (its {differing}: "
                      f"{'none' if has is NOT_SET else repr(has)}); only --steps may change")


def _require_best_of_this_run(path: Path, config, resume: Path) -> None:
    """The resumed run replaces best.h5 at its next better evaluation. One rdpg did not write, or one saved
    with other settings (another run's: a checkpoint copied into this folder, its config.yaml moved away), is
    refused, as config.yaml is, rather than lost. A damaged one of rdpg's is left to the run, which replaces it."""
    from rdpg_cli.checkpoint import config_from_checkpoint, read_checkpoint
    from rdpg_cli.config import ConfigError
    from rdpg_cli.errors import CheckpointError
    from rdpg_cli.runs import written_by_rdpg

    if path.is_symlink() or not path.is_file():  # a link is replaced, not written through: nothing is lost
        return
    if not written_by_rdpg(path):  # another tool's HDF5 file, a text file of the user's
        raise ConfigError(f"--resume {resume}: {path} is not a file rdpg wrote; the run would replace it at its "
                          "next better evaluation: move it away to resume")
    try:
        written = config_from_checkpoint(read_checkpoint(path, with_replay=False), str(path)).to_dict()
    except CheckpointError:  # damaged: nothing of a run to lose in it
        return
    shown = _settings_differing(written, config)
    if shown:
        raise ConfigError(
            f"--resume {resume}: {path} was saved with other settings than checkpoint.h5 ({shown}): another "
            "run's, which this one would replace at its next better evaluation; move it away to resume")


def _require_folder_config(path: Path, config, resume: Path) -> int | None:
    """A resume continues with the checkpoint's settings and writes them to the folder's config.yaml. If that
    file says otherwise (edited in the hope of changing a setting, or the checkpoint of another run copied
    in), overwriting it would lose the edit, or mix two runs' logs in one folder: refused, with the keys
    that differ. train.steps is the one setting a resume changes (--steps): its value in config.yaml is
    returned (None when the file is missing; it is written again)."""
    import yaml

    from rdpg_cli.config import ConfigError, config_from_dict

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--resume {resume}: {path} cannot be read ({getattr(exc, 'strerror', None) or exc}); "
                          "move it away to resume (it is written again from the checkpoint)") from None
    try:  # read as a preset: keys a file of an older rdpg leaves out take their defaults, as in the checkpoint
        written = config_from_dict(yaml.safe_load(text), str(path)).to_dict()
    except (yaml.YAMLError, ConfigError):
        written = None
    shown = "it is not a config rdpg can read" if written is None else _settings_differing(written, config)
    if shown:
        raise ConfigError(
            f"--resume {resume}: {path} differs from the settings in checkpoint.h5 ({shown}); a resume continues "
            "with the checkpoint's settings and rewrites config.yaml: undo the edit, or move config.yaml away "
            "to resume (settings cannot change on a resume: start a new run for that)")
    return written["train"]["steps"]


def _settings_differing(written: dict, config) -> str | None:
    """The keys (up to four named) in which a stored config's dict differs from ``config``, train.steps aside
    (the one setting a resume changes, with --steps); None when none does."""
    differing = [key for key in _differing_keys(written, config.to_dict()) if key != "train.steps"]
    if not differing:
        return None
    return ", ".join(differing[:4]) + (f" and {len(differing) - 4} more" if len(differing) > 4 else "")


def _differing_keys(written: dict, expected: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two configs' dicts."""
    keys = list(expected) + [k for k in written if k not in expected]
    out = []
    for key in keys:
        mine, theirs = written.get(key), expected.get(key)
        if isinstance(theirs, dict) and isinstance(mine, dict):
            out += _differing_keys(mine, theirs, f"{prefix}{key}.")
        elif mine != theirs or key not in written:
            out.append(f"{prefix}{key}")
    return out


def _return_text(value: float | None) -> str:
    """A return for the summary: one decimal, "-" for none, and 0.0 for what rounds to -0.0 (MountainCar)."""
    if value is None:
        return "-"
    text = f"{value:.1f}"
    return "0.0" if text == "-0.0" else text


def _evaluation_pending(data) -> bool:
    """Whether a checkpoint was written before its step's evaluation, which its environment failed (a resume
    runs it, even at the end of the budget)."""
    from rdpg_cli.checkpoint import trainer_state_dict

    return bool(trainer_state_dict(data).get("evaluation_pending", False))


def _file_state(path: Path) -> tuple[int, int] | None:
    """(size, modification time) of a file, None when it is not there: what tells that it was rewritten."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


def _saved_state(run_dir: Path) -> str:
    """What an aborted run leaves to resume from."""
    from rdpg_cli.checkpoint import read_checkpoint

    from rdpg_cli.runs import RUN_FILES

    checkpoint = run_dir / "checkpoint.h5"
    if not checkpoint.exists():
        if not any((run_dir / name).exists() for name in RUN_FILES):
            return "nothing was written"
        return f"no checkpoint was written yet ({run_dir}: start again with --force)"
    try:
        steps = read_checkpoint(checkpoint, with_replay=False).counters["env_steps"]
    except RdpgError:
        return f"{checkpoint} is the last complete one"
    return f"{checkpoint} (env step {steps}) is intact: rdpg train --resume {run_dir}"


def _train_in(run_dir, config, spec, resume_data, resume_source, resume_state, force, eager, quiet, verbose, stop,
              shown, warnings):
    """The part of ``rdpg train`` that holds the run folder's lock; None when a signal came before training
    started (nothing written, nothing removed)."""
    from rdpg_cli.errors import ConfigError
    from rdpg_cli.runs import (
        RunLock,
        clear_run_files,
        refuse_existing_run,
        remove_orphaned_temporaries,
        write_run_files,
    )

    load_tensorflow(verbose)  # only now: bad input above is reported without waiting for TensorFlow
    from rdpg_cli.display import PlainReporter, QuietReporter, RichReporter
    from rdpg_cli.trainer import Trainer

    if quiet:
        reporter = QuietReporter()
    elif console.is_terminal:
        reporter = RichReporter(console)
    else:
        reporter = PlainReporter()
    with RunLock(run_dir):
        if stop.requested:
            return None
        if resume_data is None:  # again, with the lock held: a run may have started and ended there meanwhile
            refuse_existing_run(run_dir, force)
        elif resume_data is not None and _file_state(run_dir / "checkpoint.h5") != resume_state:
            raise ConfigError(f"{run_dir}/checkpoint.h5: changed while it was being read (another rdpg train "
                              "there?); try again")
        trainer = Trainer(config, spec, run_dir, reporter, run_eagerly=eager)
        try:
            if resume_data is not None:  # before any file changes: a failed restore leaves the run as it was
                trainer.restore(resume_data, resume_source)
            if stop.requested:  # a signal while the networks were built: the folder is as it was
                return None
            try:  # first, so that a closed stdout is found before anything is written
                if resume_data is not None:
                    reporter.message(f"resuming {run_dir} at env step {trainer.env_steps}")
                elif not quiet:
                    console.print(f"training [bold]{config.name}[/] ({config.env.id}) -> {run_dir}")
                for text in warnings:  # once nothing can refuse the run any more: an error stays one line
                    note(text)
            except StdoutFailed as failed:
                silence_stdout()
                raise StdoutClosed(None, failed) from None
            if force:
                clear_run_files(run_dir)
            remove_orphaned_temporaries(run_dir)
            write_run_files(run_dir, config, ["rdpg", *sys.argv[1:]])
            shown.append(reporter)
            stop.attach(trainer)
            try:
                summary = trainer.run(config.train.steps, fresh=resume_data is None)
            except StdoutFailed as failed:
                # The reader of stdout went away (`rdpg train | head`, a logger that died) or its log file's
                # disk is full. The progress line failed after a whole step: keep the run, as a stop would.
                silence_stdout()
                trainer.save()
                raise StdoutClosed(trainer.env_steps, failed) from None
            stop.finished = True  # from here a signal only ends the summary: the run is complete (exit 0)
            return summary
        finally:
            trainer.close()


class StdoutClosed(Exception):
    """stdout could no longer be written (``failed`` says why); ``env_steps`` of the checkpoint then
    written, None before any."""

    def __init__(self, env_steps: int | None, failed: StdoutFailed):
        super().__init__(env_steps)
        self.env_steps = env_steps
        self.failed = failed


def _aborted(run_dir: Path, made: list[Path], signum: int) -> int:
    """A second stop signal aborted the run: a folder this command made and left unused is removed again;
    say what is left of the run; the exit status."""
    from rdpg_cli.runs import remove_if_unused

    remove_if_unused(run_dir, made)
    note(f"aborted; {_saved_state(run_dir)}")
    return 128 + signum


def _run_training(config, run_dir, resume_data, force, eager, quiet, verbose, resume_source: str = "",
                  locate=None, resume_state: tuple[int, int] | None = None, warnings: tuple[str, ...] = ()) -> int:
    import shlex

    from rich.table import Table

    from rdpg_cli.config import windows_past_the_episode
    from rdpg_cli.envs import require_whole_observation_fits, resolve_bounds
    from rdpg_cli.errors import ConfigError, EnvironmentSetupError
    from rdpg_cli.memory import require_networks_fit
    from rdpg_cli.runs import new_run_dir, remove_if_unused

    try:
        trained = None if resume_data is None else (resume_data.observation_dim, resume_data.action_dim)
        config, spec = resolve_bounds(config, trained, resume_source)  # a custom env may have changed since
        if resume_data is not None:
            require_whole_observation_fits(config, spec, resume_data.full_observation_dim, resume_source)
        require_networks_fit(config, spec.observation_dim, spec.action_dim)  # before TensorFlow's slow refusal
    except (ConfigError, EnvironmentSetupError) as exc:  # the environment refused a key: say where it came from
        raise (locate(exc) if locate else exc) from None
    padded = windows_past_the_episode(config, spec.max_episode_steps) if resume_data is None else None
    if padded:  # a new run's, with the settings that do nothing (a resumed run was told when it started)
        keys = ("replay.sequence_length", "replay.burn_in", "env.max_episode_steps")
        warnings = (*warnings, f"warning: {locate(ConfigError(padded, keys=keys)) if locate else padded}")
    # A folder this command makes is removed again if the run stops before it starts.
    made: list[Path] = []
    if resume_data is None:
        run_dir, made = new_run_dir(config, run_dir, force)
    total = config.train.steps
    if resume_data is not None and resume_data.counters["env_steps"] >= total and not _evaluation_pending(resume_data):
        console.print(f"{run_dir}: already at {resume_data.counters['env_steps']} env steps "
                      f"(budget {total}, train.steps); raise --steps to train more")
        return 0
    from rdpg_cli.signals import FinishedRunStop, SignalStop

    shown: list = []  # the reporter, once made: where the first signal's note goes

    def on_signal(name: str) -> None:
        if shown:
            shown[0].message(f"{name}: finishing this step and writing checkpoint.h5 "
                             "(press Ctrl-C again to abort at once)")
        else:
            note(f"{name}: stopping before training starts")

    # From here to the summary a signal is handled, not fatal (TensorFlow alone takes seconds to load).
    with SignalStop(on_signal) as stop:
        try:
            summary = _train_in(run_dir, config, spec, resume_data, resume_source, resume_state, force, eager,
                                quiet, verbose, stop, shown, warnings)
        except KeyboardInterrupt:  # a second signal
            return _aborted(run_dir, made, stop.aborted_by or signal.SIGINT)
        except StdoutClosed as closed:
            if closed.env_steps is None:
                remove_if_unused(run_dir, made)
                note(f"{closed.failed} before training started; nothing was written")
            elif closed.env_steps >= total:
                note(f"{closed.failed}; the run finished at env step {closed.env_steps}")
            else:
                note(f"{closed.failed}: stopped at env step {closed.env_steps}; "
                     f"checkpoint written. Resume with: rdpg train --resume {shlex.quote(str(run_dir))}")
            return closed.failed.exit_code
        except FinishedRunStop:  # the run is complete: not an abort, whatever came before
            raise
        except Exception as exc:
            if stop.aborted_by is not None:
                # The second signal's Interrupted, turned into another error by the code it interrupted (C
                # code: TensorFlow tracing the update; or wrapped as one of rdpg's errors): the user's abort.
                if verbose:  # what the signal was turned into, for a bug report
                    _print_traceback(exc)
                return _aborted(run_dir, made, stop.aborted_by)
            if not isinstance(exc, RdpgError):
                raise
            # Bad input found late (networks or replay too large for memory): no empty folder.
            remove_if_unused(run_dir, made)
            raise (locate(exc) if locate and isinstance(exc, ConfigError) else exc) from None
        if summary is None:  # stopped before training started
            remove_if_unused(run_dir, made)
            note(f"stopped by {stop.requested} before training started; nothing was written or removed")
            return 128 + signal.Signals[stop.requested]
        if summary.stopped_by:
            note(f"stopped by {summary.stopped_by} at env step {summary.env_steps}; checkpoint written. Resume with: "
                 f"rdpg train --resume {shlex.quote(str(run_dir))}")
            return 128 + signal.Signals[summary.stopped_by]
        if not quiet:
            table = Table(title=f"{config.name}: done", show_header=False)
            table.add_column(no_wrap=True)
            table.add_column(overflow="fold")  # a long run folder wraps whole, for copying, instead of ending in "…"
            table.add_row("run folder", str(run_dir))
            table.add_row("env steps", str(summary.env_steps))
            table.add_row("wall time", f"{summary.wall_seconds:.1f} s")
            best, final = _return_text(summary.best_eval), _return_text(summary.final_eval)
            table.add_row("best eval return", best)
            if summary.final_eval is not None and (summary.best_eval is None or summary.final_eval > summary.best_eval):
                # The budget ended between evaluations: the summary's extra one is not a periodic evaluation, so
                # best.h5 does not hold it (a resumed run stays identical to an uninterrupted one).
                final += (" (after the last periodic evaluation: the policy is in checkpoint.h5, not best.h5)"
                          if summary.best_eval is not None else
                          " (at the end; no periodic evaluation ran, train.eval_every: the policy is in checkpoint.h5)")
            table.add_row("final eval return", final)
            table.add_row("files", ", ".join(summary.files))
            printed = table
        else:
            printed = str(run_dir / "checkpoint.h5")
        try:
            console.print(printed)
        except StdoutFailed as failed:
            silence_stdout()
            note(f"{failed}; the run finished at env step {summary.env_steps}")
            return failed.exit_code
        return 0


# --------------------------------------------------------------------------------------------- evaluate


@app.command()
def evaluate(
    artifact: Annotated[Path, typer.Argument(parser=_path, metavar="artifact",
                                             help="checkpoint.h5 (or best.h5), a run folder, or an export.")],
    episodes: Annotated[int | None, typer.Option(
        help="Episodes to run (default: the run's train.eval_episodes, as in its evaluations).", show_default=False)
    ] = None,
    seed: Annotated[int | None, typer.Option(
        help="Seed of the episodes' start states (default: the run's train.eval_seed).",
        show_default=False)] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")] = False,
    video: Annotated[Path | None, typer.Option(
        parser=_output_path, metavar="<path>", help="Also write the episodes to this .mp4 or .gif.")] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing --video file.")] = False,
    verbose: Verbose = False,
    quiet: Quiet = False,
) -> None:
    """Run the deterministic policy for some episodes; report mean ± std return."""
    with user_errors(verbose):
        _evaluate(artifact, episodes, seed, json_, video, force, quiet, verbose)


class EvaluationProgress:
    """A line on stderr every ``EVERY`` seconds of a long evaluation (stdout is for the result): a thousand
    episodes take minutes, and said nothing until the table."""

    EVERY = 10.0

    def __init__(self) -> None:
        self.last = time.monotonic()

    def __call__(self, result, episodes: int) -> None:
        now = time.monotonic()
        if now - self.last >= self.EVERY and len(result.returns) < episodes:
            self.last = now
            note(f"evaluating: {len(result.returns)}/{episodes} episodes, mean return {result.mean_return:.1f} "
                 "so far")


def _evaluate(artifact: Path, episodes: int | None, seed: int | None, as_json: bool, video: Path | None,
              force: bool, quiet: bool, verbose: bool) -> None:
    import json

    from rich.table import Table

    from rdpg_cli.errors import ConfigError

    if episodes is not None and episodes <= 0:
        raise ConfigError(f"--episodes: {episodes} must be > 0")
    if episodes is not None and episodes >= 2**63:  # as train refuses a --steps of that size
        raise ConfigError(f"--episodes: {episodes} is too large")
    # numpy's SeedSequence takes 32-bit words: 2**32 would repeat seed 0's episodes
    if seed is not None and not 0 <= seed < 2**32:
        raise ConfigError(f"--seed: {seed} must be in [0, 2**32)")
    if video is not None and video.suffix.lower() not in (".mp4", ".gif"):
        raise ConfigError(f"--video {video}: give a .mp4 or .gif path")
    if video is not None:
        from rdpg_cli.video import prepare_video

        prepare_video(video, force)
    from rdpg_cli.loading import load_policy, locate_checkpoint, read_before_tensorflow

    checkpoint = locate_checkpoint(artifact)
    if checkpoint is not None:  # (an exported policy is left to its runtime)
        read_before_tensorflow(checkpoint)
    load_tensorflow(verbose)  # only now: bad arguments above are reported without waiting for TensorFlow
    from rdpg_cli.evaluation import evaluate as run_episodes

    config, policy, label = load_policy(artifact)
    # By default the episodes of the run's own evaluations: the returns best_eval and metrics.csv report.
    episodes = config.train.eval_episodes if episodes is None else episodes
    seed = config.train.eval_seed if seed is None else seed
    # --json: stdout is for the one JSON line; what the environment prints goes to stderr.
    printing = stdout_to_stderr() if as_json else contextlib.nullcontext()
    progress = None if quiet else EvaluationProgress()
    if video is None:
        with printing:
            result = run_episodes(policy, config, episodes, seed, progress=progress)
    else:
        from rdpg_cli.recording import VideoRecorder

        with printing:  # the recorder's process too, started here: its environment prints as the other
            recorder = VideoRecorder(config, video, episodes, show_stderr=verbose, force=force)
            try:
                result = run_episodes(policy, config, episodes, seed, recorder=recorder, progress=progress)
                _, divergence = recorder.finish()
            except BaseException:
                recorder.abort()
                raise
        if divergence is not None:
            note(f"warning: --video: {config.env.id} did not repeat episode {divergence.episode + 1} under the same "
                 f"seed and actions (from step {divergence.step} on): the video shows another run of it")
    if as_json:
        emit(json.dumps(result.as_dict()))
        return
    summary = result.as_dict()
    table = Table(title=f"{label}: {episodes} episode{'' if episodes == 1 else 's'}, seed {seed}")
    for column in ("mean ± std", "min", "max", "mean length"):
        table.add_column(column, justify="right", overflow="fold")  # narrow: wrapped, not cut to "…"
    table.add_row(f"{summary['mean_return']:.2f} ± {summary['std_return']:.2f}", f"{summary['min_return']:.2f}",
                  f"{summary['max_return']:.2f}", f"{summary['mean_length']:.1f}")
    console.print(table)
    if video is not None and not quiet:
        console.print(f"video written to {video}")


# ----------------------------------------------------------------------------------------------- export


@app.command()
def export(
    checkpoint: Annotated[Path | None, typer.Argument(parser=_path, metavar="checkpoint",
                                                      help="checkpoint.h5 (default: the newest under runs/).")
                          ] = None,
    format_: Annotated[str, typer.Option("--format", "-f", help="savedmodel, tflite, onnx or keras.")
                       ] = "savedmodel",
    output: Annotated[Path | None, typer.Option(
        parser=_output_path, metavar="<path>", help="Where to write (default: <run>/export/...).")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing output.")] = False,
    verbose: Verbose = False,
    quiet: Quiet = False,
) -> None:
    """Export the trained policy: raw observations in, actions clipped to the bounds out."""
    with user_errors(verbose):
        from rdpg_cli.export import known_format, run_export
        from rdpg_cli.loading import read_before_tensorflow, require_existing

        known_format(format_)  # bad arguments are reported without waiting for TensorFlow
        if checkpoint is not None:
            require_existing(checkpoint, "checkpoint")
        else:
            from rdpg_cli.checkpoint import newest_checkpoint

            checkpoint = newest_checkpoint()
            if not quiet:
                console.print(f"no checkpoint given: using the newest, {checkpoint}", highlight=False, soft_wrap=True)
        from rdpg_cli.checkpoint import find_checkpoint

        read_before_tensorflow(find_checkpoint(checkpoint))
        load_tensorflow(verbose)
        run_export(checkpoint, format_, output, force, console if not quiet else None)


# ------------------------------------------------------------------------------------------------- plot


def _complete_metric(incomplete: str) -> list[str]:
    return [name for name in METRIC_LABELS if name.startswith(incomplete)]


@app.command()
def plot(
    run_dirs: Annotated[list[Path], typer.Argument(
        parser=_path, metavar="run_dirs",
        help="Run folders, or folders holding runs (every run below is drawn).", show_default=False)],
    metric: Annotated[str, typer.Option("--metric", "-m", help="Column of metrics.csv or timing.csv to draw.",
                                        autocompletion=_complete_metric)] = DEFAULT_METRIC,
    output: Annotated[Path, typer.Option("--output", "-o", parser=_output_path, metavar="<path>",
                                         help="Image to write: .png, .svg or .pdf.")
                      ] = Path("curve.png"),
    size: Annotated[str | None, typer.Option(help="Image size WIDTHxHEIGHT in pixels (default 1200x750).")
                    ] = None,
    width: Annotated[int | None, typer.Option(
        help="Image width in pixels (instead of --size); alone, the height keeps the default's proportions.")] = None,
    height: Annotated[int | None, typer.Option(
        help="Image height in pixels (instead of --size); alone, the width keeps the default's proportions.")] = None,
    band: Annotated[Band, typer.Option(help="Shaded band around the mean over seeds.")] = Band.minmax,
    smooth: Annotated[int, typer.Option(help="Moving average over this many points: evaluations for eval/ "
                                             "metrics, log rows otherwise (1: none).")] = 1,
    title: Annotated[str | None, typer.Option(help="Figure title (default: the metric and environment).")
                     ] = None,
    force: Annotated[bool, typer.Option(help="Replace an existing --output image.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show debug detail (a traceback with an error).",
                                          callback=_logging_flag("verbose"))] = False,
    quiet: Quiet = False,
) -> None:
    """Draw learning curves from run folders: runs overlaid and labelled, the seeds of one preset as their
    mean with a band (needs the 'plot' extra)."""
    with user_errors(verbose):
        from rdpg_cli.plot import parse_size, render, require_matplotlib

        require_matplotlib()  # before any option or data check: without the extra nothing can be drawn
        result = render(run_dirs, metric, output, parse_size(size, width, height), band, smooth, title, force)
    if quiet:
        emit(str(result.output))
        return
    runs = sum(len(curve.runs) for curve in result.curves)
    console.print(f"wrote {result.output} ({result.width}x{result.height} px): {len(result.curves)} curve(s) "
                  f"from {runs} run(s)", highlight=False)


# ---------------------------------------------------------------------------------------------- presets


@presets_app.callback()
def presets_list(
    ctx: typer.Context,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Add a column with each preset's file.",
                                          callback=_logging_flag("verbose"))] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print the names only, one a line.",
                                        callback=_logging_flag("quiet"))] = False,
) -> None:
    """List the shipped presets (name, environment, description); --quiet: names only, --verbose: files too."""
    if ctx.invoked_subcommand is not None:
        return
    from rich.table import Table

    from rdpg_cli.config import read_yaml, shipped_presets

    presets = shipped_presets()
    if quiet:  # one name a line, for scripts
        for name in presets:
            emit(name)
        return
    table = Table(title="shipped presets")
    table.add_column("name", style="bold", overflow="fold")  # on a narrow terminal: wrapped, never cut to "…"
    table.add_column("env", overflow="fold")
    table.add_column("description", overflow="fold")
    if verbose:
        table.add_column("file", overflow="fold")
    with user_errors():  # --verbose adds the files column here, not a traceback
        for name, path in presets.items():
            data = read_yaml(path)
            row = [name, str(data.get("env", {}).get("id", "?")), str(data.get("description", ""))]
            table.add_row(*row, *([str(path)] if verbose else []))
    console.print(table)


@presets_app.command("show")
def presets_show(
    name: Annotated[str, typer.Argument(help="Preset name or YAML path.", autocompletion=_complete_preset)],
    verbose: Annotated[bool, typer.Option(
        "--verbose", "-v", help="Show the resolved preset: every key, defaults filled in, each with its doc.",
        callback=_logging_flag("verbose", exclusive=False))] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print the YAML plain, without highlighting.",
                                        callback=_logging_flag("quiet", exclusive=False))] = False,
) -> None:
    """Print a preset's YAML (highlighted on a terminal; plain with --quiet or through a pipe), once it has been
    checked as `rdpg train` checks it."""
    # Here --verbose asks for the resolved preset, not for a traceback with an error: the error stays one line.
    with user_errors():
        from rich.syntax import Syntax

        from rdpg_cli.config import documented_yaml, load_config, read_preset_text, resolve_preset_path

        config = load_config(name)  # a preset train would refuse is refused here too, not shown as if fine
        _check_preset_against_its_environment(config, name)
        text = documented_yaml(config) if verbose else read_preset_text(resolve_preset_path(name))
        if console.is_terminal and not quiet:
            console.print(Syntax(text, "yaml"))
        else:
            emit(text, end="")


def _check_preset_against_its_environment(config, name: str) -> None:
    """What ``rdpg train`` checks against the environment (its id, kwargs, bounds, time limit), for a preset
    about to be shown. An environment that cannot be made here (a simulator not installed, no display) or
    that fails in its own code is a warning: the preset can still be read."""
    from rdpg_cli.config import key_locator, resolve_preset_path
    from rdpg_cli.envs import resolve_bounds
    from rdpg_cli.errors import ConfigError, EnvironmentSetupError, first_line
    from rdpg_cli.output import stdout_to_stderr
    from rdpg_cli.signals import raised_interrupt

    try:
        with stdout_to_stderr():  # stdout is for the preset (`rdpg presets show X > my_task.yaml`), not the env's
            resolve_bounds(config)
    except ConfigError as exc:  # the preset's own values: refused, as train refuses them
        raise key_locator(name)(exc) from None
    except EnvironmentSetupError as exc:  # the machine's (a simulator not installed) or the environment's
        note(f"warning: {key_locator(name)(exc)}; the preset was checked without its environment")
    except (Exception, SystemExit) as exc:  # the environment's own code failing (its close(), a sys.exit())
        if raised_interrupt() is not None:
            raise
        note(f"warning: {resolve_preset_path(name)}: {config.env.id} failed while the preset was checked against it "
             f"({type(exc).__name__}: {first_line(exc)}); the preset was checked without its environment")


# ------------------------------------------------------------------------------------------------- main


_TERMINAL_CODES = re.compile(r"\x1b\[[0-9;]*m")
_WARNING_PREFIX = re.compile(r"^WARN(ING)?:\s*")  # gymnasium's own, before rdpg's "warning: "


def one_line_warnings() -> None:
    """A library's Python warning (gymnasium's, matplotlib's) as one line, like rdpg's own "warning:" lines:
    Python adds the warning's source file and line, and gymnasium colours its text with terminal codes even
    into a pipe or a log file. With --verbose, Python's own form."""
    import warnings

    python_form = warnings.formatwarning

    def format_warning(message, category, filename, lineno, line=None) -> str:
        if _log_flags["verbose"]:
            return python_form(message, category, filename, lineno, line)
        text = _WARNING_PREFIX.sub("", " ".join(_TERMINAL_CODES.sub("", str(message)).split()))
        return one_line(f"warning: {text}") + "\n"

    warnings.formatwarning = format_warning


def main() -> None:
    """Entry point: usage errors become one line on stderr with exit code 2, like every other bad input."""
    import atexit

    from rdpg_cli.signals import (exit_code_of, exit_on_stop_signals, forget_raised_interrupt,
                                  ignore_stop_signals_at_teardown, interrupt_on_stop_signals, raised_interrupt)

    open_closed_standard_streams()
    tolerant_encoding()
    one_line_warnings()
    interrupt_on_stop_signals()
    atexit.register(ignore_stop_signals_at_teardown)  # first registered, so it runs after the others
    try:
        try:
            code = app(standalone_mode=False)
        except KeyboardInterrupt as exc:  # a stop signal while Typer built the command line, before it parsed
            note("aborted")
            sys.exit(exit_code_of(exc))
        except StdoutFailed as failed:  # rdpg train handles its own (a checkpoint to write); here all was done
            silence_stdout()
            if not failed.closed_pipe:  # a closed pipe is the reader's choice (`rdpg presets | head -1`): silent
                print(one_line(f"error: {failed}"), file=sys.stderr)
            sys.exit(failed.exit_code)
        except click_exceptions.UsageError as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":  # bare 'rdpg': the help, as with --help
                print(exc.format_message())
                sys.exit(0)
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
            print(one_line(f"error: {exc.format_message()}{hint}"), file=sys.stderr)
            sys.exit(2)
        except typer.Abort as abort:  # Click's word for a KeyboardInterrupt outside any command's own handling
            note("aborted")
            sys.exit(exit_code_of(abort.__cause__ or abort.__context__))
        except click_exceptions.ClickException as exc:
            print(one_line(f"error: {exc.format_message()}"), file=sys.stderr)
            sys.exit(exc.exit_code)
        signum = raised_interrupt()  # left set only where no command's own handling saw it
        if code == 130 and signum is not None:
            # Typer turns a KeyboardInterrupt outside a command's body (while it read the options) into a
            # silent exit status 130, whatever the signal was.
            note("aborted")
            code = 128 + signum
        sys.exit(code if isinstance(code, int) else 0)
    finally:
        # The command is over, its outcome decided: a stop signal now ends the process with that outcome.
        forget_raised_interrupt()
        ending = sys.exc_info()[1]
        code = ending.code if isinstance(ending, SystemExit) else 1
        exit_on_stop_signals(0 if code is None else code if isinstance(code, int) else 1)
