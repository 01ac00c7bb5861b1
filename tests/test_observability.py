"""Seeing training (issue 8): learning-curve plots, TensorBoard events, plain output off a terminal, videos,
shell completion, --quiet/--verbose and logging, and the presets beyond classic control."""

from __future__ import annotations

import csv
import importlib.util
import logging
import math
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY as CONFTEST_TINY
from conftest import rdpg_command
import yaml
from rich.logging import RichHandler
from typer.testing import CliRunner

from rdpg_cli import plot as plotting
from rdpg_cli.cli import app
from rdpg_cli.config import documented_yaml, load_config, shipped_presets

REPO = Path(__file__).resolve().parent.parent
TINY = ["--steps", "300", *CONFTEST_TINY, "--set", "train.eval_every=300"]
ANSI_ESCAPE = "\x1b"


def run_cli(args: list[str], cwd: Path, extra_env: dict[str, str] | None = None,
            prelude: str = "") -> subprocess.CompletedProcess:
    """``rdpg ARGS`` in a fresh interpreter with stdout and stderr on pipes, i.e. not a terminal.
    ``prelude`` runs first (used to hide an installed package)."""
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "CLICOLOR_FORCE", "COLUMNS")}
    env["PYTHONPATH"] = str(REPO)
    env.update(extra_env or {})
    return subprocess.run(rdpg_command(*args, prelude=prelude), cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    """One real 300-step training run with tiny networks, its output captured through a pipe."""
    where = tmp_path_factory.mktemp("tiny")
    run_dir = where / "run"
    result = run_cli(["train", "--preset", "pendulum", *TINY, "--run-dir", str(run_dir)], cwd=where)
    assert result.returncode == 0, result.stderr
    return run_dir, result


# ------------------------------------------------------------------------------------------------ plot


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the PNG header (signature, then the IHDR chunk)."""
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def write_run(folder: Path, name: str, seed: int, lr: float, returns: list[float], log_every: int = 1000,
              env_id: str = "Pendulum-v1") -> Path:
    """A synthetic run folder: config.yaml, metrics.csv (one evaluation per row) and timing.csv."""
    from rdpg_cli.trainer import METRIC_COLUMNS, TIMING_COLUMNS

    folder.mkdir(parents=True)
    config = {"name": name, "env": {"id": env_id}, "agent": {"actor_lr": lr},
              "train": {"seed": seed, "steps": log_every * len(returns), "eval_every": log_every,
                        "log_every": log_every}}
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    with open(folder / "metrics.csv", "w", newline="") as f, open(folder / "timing.csv", "w", newline="") as g:
        metrics, timing = csv.DictWriter(f, METRIC_COLUMNS), csv.DictWriter(g, TIMING_COLUMNS)
        metrics.writeheader()
        timing.writeheader()
        for i, value in enumerate(returns, start=1):
            step = i * log_every
            metrics.writerow({"env_steps": step, "episodes": i, "gradient_steps": step, "train/critic_loss": 1.0 / i,
                              "rollout/episode_return": value - 50, "eval/mean_return": value,
                              "eval/std_return": 1.0, "eval/best_return": value})
            timing.writerow({"env_steps": step, "wall_seconds": i, "time/steps_per_second": 400 + seed,
                             "time/updates_per_second": 300})
    return folder


@pytest.fixture
def synthetic_runs(tmp_path: Path) -> Path:
    """Two experiments of one preset (learning rates) with three seeds each, and one run of another preset."""
    rng = np.random.default_rng(0)
    for lr, target in ((1e-3, -150.0), (3e-4, -600.0)):
        for seed in range(3):
            curve = np.linspace(-1400, target, 12) + rng.normal(0, 60, 12)
            write_run(tmp_path / "runs" / "pendulum" / f"lr{lr}-seed{seed}", "pendulum", seed, lr, curve.tolist())
    write_run(tmp_path / "runs" / "lander" / "seed0", "lunarlander", 0, 1e-3,
              np.linspace(-300, 200, 12).tolist(), env_id="LunarLanderContinuous-v3")
    return tmp_path / "runs"


def test_plot_writes_png_of_requested_size_with_one_curve_per_experiment(synthetic_runs: Path, tmp_path: Path):
    pytest.importorskip("matplotlib")
    from PIL import Image

    output = tmp_path / "curve.png"
    result = CliRunner().invoke(app, ["plot", str(synthetic_runs / "pendulum"), str(synthetic_runs / "lander"),
                                      "--output", str(output), "--width", "900", "--height", "560"])
    assert result.exit_code == 0, result.stderr
    assert "3 curve(s) from 7 run(s)" in result.stdout
    assert png_size(output) == (900, 560)
    image = np.asarray(Image.open(output).convert("RGB")).astype(int)
    # The first curve is drawn in matplotlib's tab10 blue, its band a pale blend of it: both must be there.
    blue = np.all(np.abs(image - [31, 119, 180]) <= 8, axis=-1)
    assert blue.sum() > 500, "no line in the first curve's colour"
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 50, "the image is (nearly) blank"


def test_plot_groups_seeds_into_mean_and_band(synthetic_runs: Path, tmp_path: Path):
    pytest.importorskip("matplotlib")
    runs = [plotting.read_run(p) for p in plotting.find_runs([synthetic_runs])]
    curves, skipped = plotting.build_curves(runs, "eval/mean_return", plotting.Band.minmax)
    assert skipped == []
    by_size = sorted(len(c.runs) for c in curves)
    assert by_size == [1, 3, 3]
    labels = sorted(c.label for c in curves)
    assert labels == ["lunarlander (LunarLanderContinuous-v3), seed 0",
                      "pendulum (Pendulum-v1, agent.actor_lr=0.0003), 3 seeds",
                      "pendulum (Pendulum-v1, agent.actor_lr=0.001), 3 seeds"]
    curve = next(c for c in curves if "0.001" in c.label)
    values = np.array([[run.columns["eval/mean_return"][s] for s in sorted(run.columns["eval/mean_return"])]
                       for run in curve.runs])
    np.testing.assert_allclose(curve.mean, values.mean(axis=0))
    np.testing.assert_allclose(curve.low, values.min(axis=0))
    np.testing.assert_allclose(curve.high, values.max(axis=0))
    std_curves, _ = plotting.build_curves(runs, "eval/mean_return", plotting.Band.std)
    std_curve = next(c for c in std_curves if "0.001" in c.label)
    np.testing.assert_allclose(std_curve.high, values.mean(axis=0) + values.std(axis=0, ddof=1))
    assert curve.steps == [1000.0 * i for i in range(1, 13)]


def test_plot_bookkeeping_keys_do_not_split_seeds(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    """Seeds that differ in budget, logging or checkpoint interval are still one experiment, drawn over the
    steps all of them cover; what the longer runs have beyond is said, not dropped silently."""
    first = write_run(tmp_path / "a", "pendulum", 0, 1e-3, [-900.0, -500.0])
    second = write_run(tmp_path / "b", "pendulum", 1, 1e-3, [-800.0, -400.0, -300.0])
    config = yaml.safe_load((second / "config.yaml").read_text())
    config["train"]["checkpoint_every"] = 123
    (second / "config.yaml").write_text(yaml.safe_dump(config))
    runs = [plotting.read_run(first), plotting.read_run(second)]
    curves, _ = plotting.build_curves(runs, "eval/mean_return", plotting.Band.minmax)
    assert [len(c.runs) for c in curves] == [2]
    assert curves[0].steps == [1000.0, 2000.0]  # the steps both seeds cover
    assert curves[0].mean == [-850.0, -450.0]
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        f"{curves[0].label.rsplit(', ', 1)[0]}: drawn over env steps 1000-2000, where all 2 runs have values; "
        "1 value(s) of the longer runs outside that range are left out"]
    caplog.clear()
    plotting.build_curves([plotting.read_run(first)] * 2, "eval/mean_return", plotting.Band.minmax)
    assert not caplog.records  # runs of one length: nothing left out, nothing said


def test_plot_reads_timing_metrics_and_size_option(synthetic_runs: Path, tmp_path: Path):
    pytest.importorskip("matplotlib")
    output = tmp_path / "speed.png"
    result = CliRunner().invoke(app, ["plot", str(synthetic_runs), "-m", "time/steps_per_second", "-o",
                                      str(output), "--size", "640x400", "--smooth", "3", "--band", "std", "-q"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == str(output)  # --quiet: the path only
    assert png_size(output) == (640, 400)


def test_plot_keeps_only_measured_evaluations(tmp_path: Path):
    """metrics.csv repeats the last evaluation on every log row; the curve has a point per evaluation."""
    folder = write_run(tmp_path / "run", "pendulum", 0, 1e-3, [-900.0, -900.0, -500.0, -500.0], log_every=500)
    config = yaml.safe_load((folder / "config.yaml").read_text())
    config["train"]["eval_every"] = 1000
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    run = plotting.read_run(folder)
    assert run.columns["eval/mean_return"] == {1000: -900.0, 2000: -500.0}
    assert len(run.columns["rollout/episode_return"]) == 4


@pytest.mark.parametrize(("args", "expected"), [
    (["missing-run"], "missing-run: no such run folder"),
    (["EMPTY"], "no metrics.csv in it or below it"),
    (["RUNS", "--metric", "eval/mean_retrun"],
     "not in metrics.csv or timing.csv (did you mean 'eval/mean_return'?); available: eval/best_return, "
     "eval/mean_return"),
    (["RUNS", "--output", "curve.jpg"], "give a .png, .svg or .pdf path"),
    (["RUNS", "--size", "12x12"], "--size 12x12: width 12 pixels is outside 200..8000"),
    (["RUNS", "--size", "800x600", "--width", "900"], "not both"),
])
def test_plot_errors_are_one_line(synthetic_runs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  args: list[str], expected: str):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "EMPTY").mkdir()
    args = [str(synthetic_runs) if a == "RUNS" else a for a in args]
    result = CliRunner().invoke(app, ["plot", *args])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert expected in result.stderr
    assert not (tmp_path / "curve.png").exists()


def test_plot_replaces_an_existing_image_only_with_force(synthetic_runs: Path, tmp_path: Path):
    pytest.importorskip("matplotlib")
    output = tmp_path / "mine.png"
    output.write_bytes(b"the user's own picture")
    result = CliRunner().invoke(app, ["plot", str(synthetic_runs), "-o", str(output)])
    assert result.exit_code == 2
    assert result.stderr == f"error: --output {output}: already exists; use --force to replace it\n"
    assert output.read_bytes() == b"the user's own picture"
    result = CliRunner().invoke(app, ["plot", str(synthetic_runs), "-o", str(output), "--force"])
    assert result.exit_code == 0, result.stderr
    assert output.read_bytes().startswith(b"\x89PNG")


def test_plot_without_matplotlib_names_the_extra(synthetic_runs: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch):
    for module in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, module, None)  # import of it now raises ImportError
    result = CliRunner().invoke(app, ["plot", str(synthetic_runs), "-o", str(tmp_path / "c.png")])
    assert result.exit_code == 2
    assert result.stderr == ("error: rdpg plot needs matplotlib, the 'plot' extra: pip install '.[plot]' in rdpg's "
                             "source folder\n")


def test_plot_logs_runs_left_out_through_rich(synthetic_runs: Path, tmp_path: Path):
    """A run without the metric yet is left out with a warning on stderr; --verbose adds debug lines."""
    pytest.importorskip("matplotlib")
    fresh = tmp_path / "fresh"
    write_run(fresh, "pendulum", 7, 1e-3, [-1000.0])
    with open(fresh / "metrics.csv") as f:
        rows = list(csv.reader(f))
    rows[1][rows[0].index("eval/mean_return")] = ""  # no evaluation yet
    with open(fresh / "metrics.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    args = ["plot", str(synthetic_runs / "lander"), str(fresh), "-o", str(tmp_path / "c.png")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stderr
    # Off a terminal: one plain line per record, neither wrapped nor padded.
    assert result.stderr == f"warning: {fresh}: no value of eval/mean_return yet; left out of the plot\n"
    verbose = CliRunner().invoke(app, [*args, "--verbose", "--force"])
    assert f"debug: {fresh}: pendulum, seed 7, 1 log rows\n" in verbose.stderr
    quiet = CliRunner().invoke(app, [*args, "--quiet", "--force"])
    assert quiet.stderr.startswith("warning: ")  # --quiet keeps warnings and errors
    handlers = [h for h in logging.getLogger("rdpg_cli").handlers if isinstance(h, RichHandler)]
    assert len(handlers) == 1  # configured once, however many commands ran


def test_metric_labels_cover_every_logged_column():
    """Axis labels and --metric completion come from METRIC_LABELS: it must know every column written."""
    from rdpg_cli.trainer import METRIC_COLUMNS, TIMING_COLUMNS

    written = {c for c in [*METRIC_COLUMNS, *TIMING_COLUMNS] if c != "env_steps"}
    assert written <= set(plotting.METRIC_LABELS)


# ------------------------------------------------------------------------------------------ TensorBoard


def tensorboard_events(run_dir: Path) -> tuple[dict[str, dict[int, float]], dict[str, str]]:
    """A run's TensorBoard scalars (tag -> step -> value) and texts."""
    import tensorflow as tf

    files = sorted((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert files, "no TensorBoard event file"
    scalars: dict[str, dict[int, float]] = {}
    texts: dict[str, str] = {}
    for path in files:
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                plugin = value.metadata.plugin_data.plugin_name
                if plugin == "scalars":
                    scalars.setdefault(value.tag, {})[event.step] = float(tf.make_ndarray(value.tensor))
                elif plugin == "text":
                    texts[value.tag] = tf.make_ndarray(value.tensor).item().decode()
    return scalars, texts


def test_tensorboard_events_hold_namespaced_scalars_and_config(tiny_run):
    run_dir, _ = tiny_run
    scalars, texts = tensorboard_events(run_dir)
    required = {"train/critic_loss", "train/actor_loss", "train/mean_q", "train/out_of_bounds",
                "rollout/episode_return", "eval/mean_return", "time/steps_per_second"}
    assert required <= set(scalars), f"missing: {required - set(scalars)}"
    # The same numbers as metrics.csv (TensorBoard keeps float32).
    with open(run_dir / "metrics.csv", newline="") as f:
        rows = {int(r["env_steps"]): r for r in csv.DictReader(f)}
    for tag in ("train/critic_loss", "eval/mean_return"):
        for step, value in scalars[tag].items():
            assert value == pytest.approx(float(rows[step][tag]), rel=1e-6)
    assert sorted(scalars["train/critic_loss"]) == [100, 200, 300]
    assert "config" in texts
    assert "Pendulum-v1" in texts["config"] and "actor_layers" in texts["config"]


def test_tensorboard_gets_each_evaluation_at_the_step_it_ran(tmp_path):
    """Evaluations between metrics rows (eval_every 150, log_every 200): TensorBoard has each one once, at
    150, 300, 450 and 600, with the value metrics.csv repeats on the rows after it."""
    run_dir = tmp_path / "run"
    result = run_cli(["train", "--preset", "pendulum", *TINY, "--steps", "600", "--set", "train.eval_every=150",
                      "--set", "train.log_every=200", "--run-dir", str(run_dir)], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    scalars, _ = tensorboard_events(run_dir)
    with open(run_dir / "metrics.csv", newline="") as f:
        rows = {int(r["env_steps"]): r for r in csv.DictReader(f)}
    assert sorted(rows) == [200, 400, 600]
    for tag in ("eval/mean_return", "eval/best_return"):
        assert sorted(scalars[tag]) == [150, 300, 450, 600]
        for evaluated, row in ((150, 200), (300, 400), (600, 600)):
            assert scalars[tag][evaluated] == pytest.approx(float(rows[row][tag]), rel=1e-6)
    assert sorted(scalars["train/critic_loss"]) == [200, 400, 600]


# ------------------------------------------------------------------------------------- plain output


def test_training_output_through_a_pipe_is_plain_lines(tiny_run):
    _, result = tiny_run
    for stream in (result.stdout, result.stderr):
        assert ANSI_ESCAPE not in stream and "\r" not in stream
    lines = result.stdout.splitlines()
    assert lines[0].startswith("training pendulum (Pendulum-v1) -> ")
    progress = [line for line in lines if line.startswith("step ")]
    # A line at most every 10 s and one at the end: a 300-step run is one or two lines, not a redrawn bar.
    assert 1 <= len(progress) <= 3
    assert progress[-1].startswith("step 300/300 ") and "updates/s" in progress[-1]
    assert "critic loss -" not in progress[-1]  # the last known loss, not a blank after a metrics row


def test_rich_progress_keeps_bar_and_figures_readable():
    """On a terminal: the bar, the step count and the ETA on one line, the figures under it, none cut to '…'."""
    import io

    from rich.console import Console

    from rdpg_cli.display import RichReporter

    screen = io.StringIO()
    reporter = RichReporter(Console(file=screen, force_terminal=True, width=100, color_system=None))
    reporter.start(total=1000, done=0)
    stats = {"env_steps": 500, "steps_per_second": 250.0, "updates": 400, "episode_return": -1200.0,
             "last_eval": -900.0, "best_eval": -850.0, "critic_loss": 3.25}
    reporter.update(stats)
    reporter.update({**stats, "env_steps": 1000, "updates": 900, "critic_loss": None})
    reporter.finish()
    final = screen.getvalue().split("\r")[-1]  # the last redraw
    assert "1000/1000 env steps" in final and "eta" in final and "…" not in final
    assert "250 steps/s" in final and "return -1200.0  eval -900.0 (best -850.0)  critic loss 3.25" in final


def test_presets_through_a_pipe_are_plain(tmp_path: Path):
    listing = run_cli(["presets"], cwd=tmp_path)
    shown = run_cli(["presets", "show", "pendulum"], cwd=tmp_path)
    names = run_cli(["presets", "--quiet"], cwd=tmp_path)
    for result in (listing, shown, names):
        assert result.returncode == 0, result.stderr
        assert ANSI_ESCAPE not in result.stdout and "\r" not in result.stdout
    assert shown.stdout == shipped_presets()["pendulum"].read_text()  # copyable as is
    assert names.stdout.split() == list(shipped_presets())


def test_output_through_a_pipe_is_not_cut_to_80_columns(tmp_path: Path, tiny_run):
    """Into a pipe Rich wrapped at 80 columns: `rdpg presets -v | grep` read "/work/main/pres…" for a preset's
    file, and a message broke mid-sentence. With COLUMNS set (or on a terminal) the width is kept, and a
    narrow table wraps its cells instead of cutting them."""
    listing = run_cli(["presets", "-v"], cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    rows = [line.split("│")[1:-1] for line in listing.stdout.splitlines() if line.count("│") == 5]
    # Each file whole: a path that is there. (Those of the checkout rdpg runs from; this process may have
    # imported an installed copy, as CI's does.)
    assert [(name.strip(), Path(file.strip()).name) for name, _, _, file in rows] == [
        (name, f"{name}.yaml") for name in shipped_presets()], listing.stdout
    assert all(Path(file.strip()).is_file() for *_, file in rows)
    assert "…" not in listing.stdout
    narrow = run_cli(["presets", "-v"], cwd=tmp_path, extra_env={"COLUMNS": "60"})
    assert max(len(line) for line in narrow.stdout.splitlines()) <= 60 and "…" not in narrow.stdout
    assert "".join(line.split("│")[-2].strip() for line in narrow.stdout.splitlines()
                   if line.count("│") == 5).count(".yaml") == len(rows)  # each path whole, over a few lines
    run_dir, _ = tiny_run
    at_budget = run_cli(["train", "--resume", str(run_dir)], cwd=tmp_path)
    assert at_budget.returncode == 0, at_budget.stderr
    assert at_budget.stdout == (f"{run_dir}: already at 300 env steps (budget 300, train.steps); raise --steps to "
                                "train more\n")


def test_presets_show_verbose_documents_every_key():
    result = CliRunner().invoke(app, ["presets", "show", "pendulum", "--verbose"])
    assert result.exit_code == 0, result.stderr
    assert yaml.safe_load(result.stdout) == load_config("pendulum").to_dict()  # loads back to the config
    assert "  critic_lr: 0.001" in result.stdout and "# critic Adam learning rate" in result.stdout


def test_every_command_takes_quiet_and_verbose():
    import typer

    def walk(command, path):
        yield path, command
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, [*path, name])

    root = typer.main.get_command(app)
    commands = {" ".join(path): command for path, command in walk(root, []) if path}
    assert {"train", "evaluate", "export", "plot", "presets", "presets show"} <= set(commands)
    for name, command in commands.items():
        options = {opt for param in command.params for opt in param.opts}
        assert {"--quiet", "--verbose"} <= options, name


# ---------------------------------------------------------------------------------------------- video


def test_evaluate_video_writes_a_playable_gif(tiny_run, tmp_path: Path):
    pytest.importorskip("imageio")
    from PIL import Image

    run_dir, _ = tiny_run
    output = tmp_path / "episode.gif"
    result = run_cli(["evaluate", str(run_dir), "--episodes", "1", "--video", str(output)], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "XDG_RUNTIME_DIR" not in result.stderr  # pygame's headless noise is kept off the terminal
    with Image.open(output) as gif:
        assert gif.format == "GIF"
        assert gif.info.get("loop") == 0  # plays in a loop
        assert gif.n_frames > 20  # an episode of Pendulum-v1 is 200 steps; identical frames may merge
        assert gif.size[0] >= 64 and gif.size[1] >= 64
        gif.seek(gif.n_frames // 2)
        middle = np.asarray(gif.convert("RGB"))
    assert middle.std() > 1.0, "a blank frame"


# ------------------------------------------------------------------------------------ shell completion


def test_show_completion_prints_a_bash_script(monkeypatch: pytest.MonkeyPatch):
    # Typer's switch for naming the shell instead of detecting it from the parent process.
    monkeypatch.setenv("_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION", "1")
    result = CliRunner().invoke(app, ["--show-completion", "bash"], prog_name="rdpg")
    assert result.exit_code == 0
    assert "_RDPG_COMPLETE=complete_bash" in result.stdout
    assert "complete -o default -F _rdpg_completion rdpg" in result.stdout


@pytest.mark.parametrize(("words", "expected"), [
    ("rdpg pl", ["plot"]),
    ("rdpg train --preset lunar", ["lunarlander"]),
    ("rdpg presets show half", ["halfcheetah"]),
    ("rdpg plot runs --metric eval/m", ["eval/mean_return"]),
    ("rdpg plot runs --band ", ["minmax", "std"]),
])
def test_completion_answers(words: str, expected: list[str]):
    parts = words.split(" ")
    env = {"_RDPG_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(len(parts) - 1)}
    result = CliRunner().invoke(app, [], prog_name="rdpg", env=env)
    assert result.exit_code == 0
    assert [line for line in result.stdout.splitlines() if line] == expected


def test_install_completion_writes_a_sourced_script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION", "1")
    result = CliRunner().invoke(app, ["--install-completion", "bash"], prog_name="rdpg")
    assert result.exit_code == 0, result.output
    script = tmp_path / ".bash_completions" / "rdpg.sh"
    assert "_RDPG_COMPLETE=complete_bash" in script.read_text()
    assert f"source '{script}'" in (tmp_path / ".bashrc").read_text()


def test_bash_completion_end_to_end(tmp_path: Path):
    """The script from --show-completion, sourced in a real bash, completes through the installed command."""
    script = Path(sys.executable).parent / "rdpg"
    bash = shutil.which("bash")
    if not script.exists() or bash is None:
        pytest.skip("needs bash and the installed rdpg command beside this Python")
    env = {**os.environ, "PATH": f"{script.parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    program = ('source <(rdpg --show-completion bash)\n'
               'COMP_WORDS=(rdpg presets); COMP_CWORD=1; _rdpg_completion rdpg\n'
               'printf "%s\\n" "${COMPREPLY[@]}"\n')
    result = subprocess.run([bash, "-c", program], env=env, cwd=tmp_path, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["presets"]


# -------------------------------------------------------------------------------------------- presets


def test_every_preset_states_bounds_batch_size_and_warmup():
    for name, path in shipped_presets().items():
        data = yaml.safe_load(path.read_text())
        bounds, agent = data.get("action_bounds") or {}, data.get("agent") or {}
        missing = [k for k in ("low", "high") if k not in bounds]
        missing += [k for k in ("batch_size", "warmup_steps", "warmup_critic", "warmup_actor") if k not in agent]
        assert not missing, f"{name}: states no {missing}"
        assert yaml.safe_load(documented_yaml(load_config(name))) == load_config(name).to_dict()


@pytest.mark.parametrize(("preset", "env_id", "extra", "dims"), [
    ("lunarlander", "LunarLanderContinuous-v3", "box2d", 2),
    ("halfcheetah", "HalfCheetah-v5", "mujoco", 6),
])
def test_new_presets_cite_their_source_and_extra(preset: str, env_id: str, extra: str, dims: int):
    text = shipped_presets()[preset].read_text()
    config = load_config(preset)
    assert config.env.id == env_id
    assert config.action_bounds.low == [-1.0] * dims and config.action_bounds.high == [1.0] * dims
    assert "rl-baselines3-zoo" in text and f"pip install '.[{extra}]'" in text
    pyproject = (REPO / "pyproject.toml").read_text()
    assert f'{extra} = ["gymnasium[{extra}]' in pyproject


@pytest.mark.parametrize(("preset", "module", "extra"), [
    ("lunarlander", "Box2D", "box2d"),
    ("halfcheetah", "mujoco", "mujoco"),
])
def test_missing_simulator_names_the_extra(tmp_path: Path, preset: str, module: str, extra: str):
    """Whether or not the simulator is installed here, hiding it shows what a user without it sees."""
    result = run_cli(["train", "--preset", preset], cwd=tmp_path, prelude=f"sys.modules[{module!r}] = None")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert f"pip install '.[{extra}]' in rdpg's source folder" in result.stderr
    assert not (tmp_path / "runs").exists()
    # `presets show` checks a preset against its environment as train does, but one whose simulator is
    # missing can still be read: a warning, and the preset.
    shown = run_cli(["presets", "show", preset, "-q"], cwd=tmp_path, prelude=f"sys.modules[{module!r}] = None")
    assert shown.returncode == 0 and shown.stdout == shipped_presets()[preset].read_text(), shown
    # Named as train names it: the preset's file, then the key.
    assert shown.stderr.count("\n") == 1, shown.stderr
    # (The checkout's file, which the command runs from; this process may have imported an installed copy.)
    assert re.match(rf"warning: \S+/presets/{preset}\.yaml: env\.id: ", shown.stderr), shown.stderr
    assert f"pip install '.[{extra}]'" in shown.stderr and "checked without its environment" in shown.stderr


@pytest.mark.slow
@pytest.mark.parametrize(("preset", "module", "extra"), [
    ("lunarlander", "Box2D", "box2d"),
    ("halfcheetah", "mujoco", "mujoco"),
])
def test_preset_smoke_run(tmp_path: Path, preset: str, module: str, extra: str):
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"needs the '{extra}' extra ({module} is not installed): pip install '.[{extra}]'")
    run_dir = tmp_path / "run"
    result = run_cli(["train", "--preset", preset, *TINY, "--set", "replay.size=2000",
                      "--set", "env.max_episode_steps=100", "--run-dir", str(run_dir), "--quiet"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    # --quiet is quiet: MuJoCo's warnings about gymnasium's models go to the debug log, and its log file is
    # not written into the working folder.
    assert result.stderr == "" and not (tmp_path / "MUJOCO_LOG.TXT").exists()
    with open(run_dir / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["env_steps"]) for r in rows] == [100, 200, 300]
    assert math.isfinite(float(rows[-1]["eval/mean_return"]))
    assert math.isfinite(float(rows[-1]["train/critic_loss"]))
    assert (run_dir / "checkpoint.h5").is_file()


@pytest.mark.parametrize(("args", "error"), [
    (["--help"], None),
    (["train", "--help"], None),
    (["presets"], None),
    (["train", "--preset", "nope"], "error: unknown preset 'nope'; shipped presets: "),
    (["export", "--format", "bogus"], "error: --format bogus: unknown; choose one of savedmodel, tflite, onnx, keras"),
    (["export", "missing.h5"], "error: missing.h5: checkpoint not found"),
    (["export"], "error: no checkpoint given and none found under runs/"),
    (["evaluate", "missing.h5"], "error: missing.h5: not found"),
    (["evaluate", "missing.h5", "--episodes", "0"], "error: --episodes: 0 must be > 0"),
    (["evaluate", "notes.h5"], "error: notes.h5: not an HDF5 file"),  # read before TensorFlow loads, as
    (["export", "notes.h5"], "error: notes.h5: not an HDF5 file"),  # train --resume reads its checkpoint
])
def test_help_and_bad_arguments_never_wait_for_tensorflow(tmp_path, args, error):
    """TensorFlow takes seconds to load: help, listings and arguments that cannot work answer without it
    (here it cannot be imported at all)."""
    (tmp_path / "notes.h5").write_text("my notes\n")
    result = run_cli(args, cwd=tmp_path, prelude="sys.modules['tensorflow'] = None\nsys.modules['keras'] = None")
    if error is None:
        assert result.returncode == 0, result.stderr
        assert result.stdout
    else:
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1 and result.stderr.startswith(error), result.stderr
