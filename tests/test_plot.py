"""rdpg_cli.plot: each evaluation read once, at the env step it ran, whatever train.log_every is; and a missing
matplotlib reported before anything else."""

from __future__ import annotations

import csv
import re
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from conftest import drop_a_stop_signal

from rdpg_cli import plot as plotting
from rdpg_cli.cli import app
from rdpg_cli.trainer import METRIC_COLUMNS, TIMING_COLUMNS

MISSING_MATPLOTLIB = ("error: rdpg plot needs matplotlib, the 'plot' extra: pip install '.[plot]' in rdpg's source "
                      "folder\n")


def eval_return(step: int) -> float:
    """The mean return of the (made-up) evaluation at ``step``: distinct for every step."""
    return -1000.0 + step / 10


def write_trainer_run(folder: Path, steps: int, log_every: int, eval_every: int, with_config: bool = True,
                      returns=eval_return) -> Path:
    """A run folder as the trainer writes it: it evaluates at every multiple of eval_every and writes a row of
    metrics.csv at every multiple of log_every, each row holding the latest evaluation so far (blank before
    the first). The same loop as ``Trainer._loop``, without the training."""
    folder.mkdir(parents=True)
    if with_config:
        config = {"name": "pendulum", "env": {"id": "Pendulum-v1"},
                  "train": {"seed": 0, "steps": steps, "eval_every": eval_every, "log_every": log_every}}
        (folder / "config.yaml").write_text(yaml.safe_dump(config))
    last_eval: tuple[float, float] | None = None
    best: float | None = None
    with open(folder / "metrics.csv", "w", newline="") as f, open(folder / "timing.csv", "w", newline="") as g:
        metrics, timing = csv.DictWriter(f, METRIC_COLUMNS), csv.DictWriter(g, TIMING_COLUMNS)
        metrics.writeheader()
        timing.writeheader()
        for step in range(1, steps + 1):
            if step % eval_every == 0:
                last_eval = (returns(step), 10.0 + step / 1000)
                best = last_eval[0] if best is None else max(best, last_eval[0])
            if step % log_every == 0:
                metrics.writerow({
                    "env_steps": step, "episodes": step // 200, "gradient_steps": step,
                    "train/critic_loss": 1.0 / step, "rollout/episode_return": -step,
                    "eval/mean_return": last_eval[0] if last_eval else "",
                    "eval/std_return": last_eval[1] if last_eval else "",
                    "eval/best_return": best if best is not None else ""})
                timing.writerow({"env_steps": step, "wall_seconds": step / 100, "time/steps_per_second": 100,
                                 "time/updates_per_second": 90})
    return folder


# ---------------------------------------------------------------------------------- evaluations at their step


def test_evaluation_between_log_rows_is_read_at_its_step(tmp_path: Path):
    """log_every 200, eval_every 500: the evaluation at 500 is in the row of 600, the one at 1000 in its own."""
    run = plotting.read_run(write_trainer_run(tmp_path / "run", 1200, log_every=200, eval_every=500))
    assert run.columns["eval/mean_return"] == {500: eval_return(500), 1000: eval_return(1000)}
    assert run.columns["eval/std_return"] == {500: 10.5, 1000: 11.0}
    assert run.columns["eval/best_return"] == {500: eval_return(500), 1000: eval_return(1000)}
    # Every other column keeps a point per log row.
    assert sorted(run.columns["rollout/episode_return"]) == [200, 400, 600, 800, 1000, 1200]
    assert sorted(run.columns["time/steps_per_second"]) == [200, 400, 600, 800, 1000, 1200]


def test_evaluations_more_often_than_rows_are_read_where_they_ran(tmp_path: Path):
    """log_every 500, eval_every 200: each row holds the last evaluation before it (400, 1000, 1400); the ones
    no row holds (200, 600, 800, 1200) are not in metrics.csv at all."""
    run = plotting.read_run(write_trainer_run(tmp_path / "run", 1500, log_every=500, eval_every=200))
    assert run.columns["eval/mean_return"] == {400: eval_return(400), 1000: eval_return(1000),
                                               1400: eval_return(1400)}


@pytest.mark.parametrize(("log_every", "eval_every"), [(100, 300), (300, 100), (250, 1000), (1000, 1000),
                                                       (700, 300)])
def test_every_evaluation_in_metrics_csv_is_read_exactly_once(tmp_path: Path, log_every: int, eval_every: int):
    steps = 3000
    run = plotting.read_run(write_trainer_run(tmp_path / "run", steps, log_every, eval_every))
    # The evaluations a row holds: the last multiple of eval_every at or before each row's step.
    held = sorted({row - row % eval_every for row in range(log_every, steps + 1, log_every)} - {0})
    assert run.columns["eval/mean_return"] == {step: eval_return(step) for step in held}


def test_equal_consecutive_evaluations_are_both_kept(tmp_path: Path):
    """Two evaluations with the same return (a saturated task) are two points, not one."""
    run = plotting.read_run(write_trainer_run(tmp_path / "run", 1200, log_every=200, eval_every=500,
                                              returns=lambda step: -150.0))
    assert run.columns["eval/mean_return"] == {500: -150.0, 1000: -150.0}


def test_without_config_each_new_evaluation_is_kept_once(tmp_path: Path):
    """No config.yaml, so no eval_every: a row holds a new evaluation when its eval/ values change."""
    run = plotting.read_run(write_trainer_run(tmp_path / "run", 1200, log_every=200, eval_every=500,
                                              with_config=False))
    assert run.columns["eval/mean_return"] == {600: eval_return(500), 1000: eval_return(1000)}


def test_a_stop_signal_swallowed_on_the_way_stops_the_plot_before_it_replaces_anything(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command_line_signals):
    """A SIGTERM whose exception Python dropped (raised in a finalizer: "Exception ignored") while the figure
    was drawn: the plot replaced the user's image with --force and ended with status 0."""
    pytest.importorskip("matplotlib")
    import signal

    from matplotlib.figure import Figure

    real_savefig = Figure.savefig

    def savefig_with_a_swallowed_stop(self, *args, **kwargs):
        real_savefig(self, *args, **kwargs)
        drop_a_stop_signal()

    folder = write_trainer_run(tmp_path / "run", 600, log_every=200, eval_every=200)
    (tmp_path / "curve.png").write_text("mine")
    monkeypatch.setattr(Figure, "savefig", savefig_with_a_swallowed_stop)
    result = CliRunner().invoke(app, ["plot", str(folder), "-o", str(tmp_path / "curve.png"), "--force"])
    assert result.exit_code == 128 + signal.SIGTERM, result.output
    assert result.stderr.strip() == "aborted", result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curve.png", "run"]  # no temporary left
    assert (tmp_path / "curve.png").read_text() == "mine"


def test_rows_before_the_first_evaluation_hold_none(tmp_path: Path):
    run = plotting.read_run(write_trainer_run(tmp_path / "run", 400, log_every=200, eval_every=500))
    assert run.columns["eval/mean_return"] == {}
    assert len(run.columns["rollout/episode_return"]) == 2


def test_short_run_with_misaligned_intervals_plots_its_evaluation(tmp_path: Path):
    """The reported case: 600 steps, log_every 200, eval_every 500. metrics.csv holds the evaluation at 500
    (in the row of 600); the plot draws it instead of saying there is no value yet."""
    pytest.importorskip("matplotlib")
    folder = write_trainer_run(tmp_path / "run", 600, log_every=200, eval_every=500)
    output = tmp_path / "curve.png"
    result = CliRunner().invoke(app, ["plot", str(folder), "-o", str(output)])
    assert result.exit_code == 0, result.stderr
    assert "no value" not in result.stderr
    assert "1 curve(s) from 1 run(s)" in result.stdout
    assert output.stat().st_size > 0
    runs = [plotting.read_run(folder)]
    curves, skipped = plotting.build_curves(runs, "eval/mean_return", plotting.Band.minmax)
    assert skipped == []
    assert curves[0].steps == [500.0] and curves[0].mean == [eval_return(500)]


def test_seeds_with_misaligned_intervals_average_at_the_evaluation_steps(tmp_path: Path):
    first = write_trainer_run(tmp_path / "a", 1200, log_every=200, eval_every=500)
    second = write_trainer_run(tmp_path / "b", 1200, log_every=200, eval_every=500, returns=lambda s: -s / 10)
    config = yaml.safe_load((second / "config.yaml").read_text())
    config["train"]["seed"] = 1
    (second / "config.yaml").write_text(yaml.safe_dump(config))
    curves, _ = plotting.build_curves([plotting.read_run(first), plotting.read_run(second)], "eval/mean_return",
                                      plotting.Band.minmax)
    assert [len(c.runs) for c in curves] == [2]
    assert curves[0].steps == [500.0, 1000.0]
    assert curves[0].mean == [(eval_return(500) - 50) / 2, (eval_return(1000) - 100) / 2]


# ------------------------------------------------------------------------------------- matplotlib missing


@pytest.fixture
def no_matplotlib(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in ("matplotlib", "matplotlib.figure", "matplotlib.backends", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, module, None)  # an import of it now raises ImportError


@pytest.mark.parametrize("args", [
    ["missing-run"],  # no such folder
    ["EMPTY"],  # no metrics.csv
    ["RUN", "--metric", "eval/mean_retrun"],  # no such column
    ["FRESH"],  # no evaluation yet
    ["RUN", "--output", "curve.jpg"],  # unsupported output
    ["RUN", "--output", "RUN/metrics.csv/curve.png"],  # a file where the output's folder would be
    ["RUN", "--smooth", "0"],
    ["RUN", "--size", "12x12"],
    ["RUN", "--size", "800x600", "--width", "900"],
])
def test_missing_matplotlib_is_said_before_any_data_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          no_matplotlib: None, args: list[str]):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "EMPTY").mkdir()
    write_trainer_run(tmp_path / "RUN", 1200, log_every=200, eval_every=500)
    write_trainer_run(tmp_path / "FRESH", 400, log_every=200, eval_every=500)
    result = CliRunner().invoke(app, ["plot", *args])
    assert result.exit_code == 2
    assert result.stderr == MISSING_MATPLOTLIB


@pytest.mark.parametrize(("size", "width", "height", "expected"), [
    (None, None, None, (1200, 750)),
    ("1600x900", None, None, (1600, 900)),
    (None, 900, 560, (900, 560)),
    (None, 800, None, (800, 500)),  # one side alone keeps the default's proportions
    (None, None, 600, (960, 600)),
])
def test_image_size_from_the_options(size, width, height, expected):
    assert plotting.parse_size(size, width, height) == expected


@pytest.mark.parametrize(("size", "width", "height", "message"), [
    ("12x12", None, None, "--size 12x12: width 12 pixels is outside 200..8000"),
    (None, 100, None, "--width: width 100 pixels is outside 200..8000"),
    (None, 250, None, "--width 250 (the height in proportion): height 156 pixels is outside 200..8000"),
    (None, None, 6000, "--height 6000 (the width in proportion): width 9600 pixels is outside 200..8000"),
])
def test_an_image_size_out_of_limits_names_the_option_it_came_from(size, width, height, message):
    with pytest.raises(plotting.PlotError, match=f"^{re.escape(message)}$"):
        plotting.parse_size(size, width, height)


def test_render_without_matplotlib_raises_before_reading(tmp_path: Path, no_matplotlib: None):
    with pytest.raises(plotting.PlotError, match=r"needs matplotlib.*pip install '\.\[plot\]'"):
        plotting.render([tmp_path / "missing-run"], output=tmp_path / "c.png")


def test_require_matplotlib_passes_when_it_is_installed():
    pytest.importorskip("matplotlib")
    plotting.require_matplotlib()


# ------------------------------------------------------------------------------------------------- labels


def test_labels_name_the_settings_that_tell_experiments_apart(tmp_path: Path):
    """Four experiments of one preset, each differing from the others in several settings: every label is
    unique and names what sets its experiment apart, not the first keys in alphabetical order (which read
    the same for the TD3 and the hard-update runs)."""
    base = {"gradient_steps": 1, "noise": "gaussian", "noise_anneal_steps": 0, "policy_delay": 1,
            "target_update": 0.005, "train_interval": 1, "twin_critics": False}
    variants = {
        "td3": {"twin_critics": True, "policy_delay": 3},
        "hard": {"target_update": 7},
        "interval": {"train_interval": 3, "gradient_steps": 2},
        "ou": {"noise": "ou", "noise_anneal_steps": 1000},
    }
    runs = []
    for name, changes in variants.items():
        folder = write_trainer_run(tmp_path / name, 400, 100, 100)
        config = yaml.safe_load((folder / "config.yaml").read_text())
        config["agent"] = {**base, **changes}
        (folder / "config.yaml").write_text(yaml.safe_dump(config))
        runs.append(plotting.read_run(folder))
    curves, _ = plotting.build_curves(runs, "eval/mean_return", plotting.Band.minmax)
    labels = {Path(c.runs[0].path).name: c.label for c in curves}
    assert len(set(labels.values())) == 4, labels
    assert "agent.twin_critics=True" in labels["td3"] or "agent.policy_delay=3" in labels["td3"]
    assert "agent.target_update=7" in labels["hard"]
    assert "…" not in "".join(labels.values())


@pytest.mark.parametrize("content", ["", "env_steps,eval/mean_return\n"])
def test_a_run_that_has_written_nothing_yet_is_left_out_not_fatal(tmp_path: Path, content: str):
    """A run that has just started: its metrics.csv empty (created, nothing written) or a header alone."""
    pytest.importorskip("matplotlib")
    write_trainer_run(tmp_path / "runs" / "done", 1200, log_every=200, eval_every=500)
    (tmp_path / "runs" / "new").mkdir()
    (tmp_path / "runs" / "new" / "metrics.csv").write_text(content)
    result = plotting.render([tmp_path / "runs"], output=tmp_path / "c.png")
    assert [path.name for path in result.skipped] == ["new"]
    assert (tmp_path / "c.png").stat().st_size > 0


@pytest.mark.parametrize(("metric", "points"), [("eval/mean_return", "evaluations"),
                                                 ("train/critic_loss", "log rows")])
def test_the_smoothing_label_names_what_is_averaged(tmp_path: Path, metric: str, points: str):
    """Evaluation columns are read once per evaluation (not per log row), so that is what --smooth averages."""
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    run = write_trainer_run(tmp_path / "RUN", 2000, log_every=100, eval_every=500)
    curves, _ = plotting.build_curves([plotting.read_run(run)], metric, plotting.Band.minmax, 3)
    assert len(curves[0].steps) == (4 if metric.startswith("eval/") else 20)
    figure = Figure()
    plotting._draw(figure, curves, metric, plotting.Band.minmax, 3, None)
    assert figure.axes[0].get_ylabel().endswith(f"\nmoving average of 3 {points}")


def test_a_write_stopped_midway_leaves_the_image_that_was_there(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """`rdpg plot --force` drew straight onto its output: a Ctrl-C (or a full disk) mid-write left a cut-short,
    unreadable image where the user's had been."""
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    run = write_trainer_run(tmp_path / "RUN", 1200, log_every=200, eval_every=500)
    output = tmp_path / "c.png"
    output.write_bytes(b"the user's image")
    real_savefig = Figure.savefig

    def interrupted(self, fname, **kwargs):
        with open(fname, "wb") as f:  # the start of an image, then the stop
            f.write(b"\x89PNG\r\n")
        raise KeyboardInterrupt

    monkeypatch.setattr(Figure, "savefig", interrupted)
    with pytest.raises(KeyboardInterrupt):
        plotting.render([run], output=output, force=True)
    assert output.read_bytes() == b"the user's image"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["RUN", "c.png"]  # no temporary left behind

    monkeypatch.setattr(Figure, "savefig", real_savefig)
    for name, magic in (("c.png", b"\x89PNG"), ("c.svg", b"<?xml"), ("c.pdf", b"%PDF")):
        plotting.render([run], output=tmp_path / name, force=True)
        assert (tmp_path / name).read_bytes().startswith(magic), name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["RUN", "c.pdf", "c.png", "c.svg"]


def test_names_near_the_limit_links_and_unwritable_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The temporary name once carried the output's, so a name of 245 bytes (valid) went over the file system's
    limit; a symbolic link is kept and its target replaced; where nothing can be written (a read-only file
    system, where unlink fails even for a missing file) the error is the write's, one line."""
    pytest.importorskip("matplotlib")
    run = write_trainer_run(tmp_path / "RUN", 1200, log_every=200, eval_every=500)
    long_name = tmp_path / ("a" * 245 + ".png")
    plotting.render([run], output=long_name)
    assert long_name.read_bytes().startswith(b"\x89PNG")

    shared = tmp_path / "shared.png"
    shared.write_bytes(b"old")
    link = tmp_path / "latest.png"
    link.symlink_to(shared)
    plotting.render([run], output=link, force=True)
    assert link.is_symlink() and shared.read_bytes().startswith(b"\x89PNG")

    def read_only(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(plotting.os, "replace", read_only)
    monkeypatch.setattr(Path, "unlink", read_only)
    with pytest.raises(plotting.PlotError, match=r"^--output .*c\.png: cannot write it \(Read-only file system\)$"):
        plotting.render([run], output=tmp_path / "c.png")


def test_a_missing_output_folder_is_made_and_taken_back_if_nothing_is_placed(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch):
    """As `rdpg export --output` and `rdpg train --run-dir` do: the folders are made once the figure is drawn
    (a metric that is not there leaves none), and removed again when the image is not placed."""
    run = write_trainer_run(tmp_path / "run", 600, log_every=200, eval_every=200)
    output = tmp_path / "figures" / "deeper" / "c.png"
    with pytest.raises(plotting.PlotError, match=r"not in metrics\.csv"):
        plotting.render([run], metric="eval/nothing", output=output)
    assert not (tmp_path / "figures").exists()
    def stopped(*args):  # Ctrl-C as the image is placed
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(plotting, "place_new", stopped)
        with pytest.raises(KeyboardInterrupt):
            plotting.render([run], output=output)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"], "folders or a temporary file left behind"
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "notes.txt").write_text("mine")
    plotting.render([run], output=output)
    assert output.read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == ["deeper", "notes.txt"]
    (tmp_path / "a-file").write_text("mine")
    with pytest.raises(plotting.PlotError, match=r"^--output .*a-file/c\.png: .*a-file is not a folder$"):
        plotting.render([run], output=tmp_path / "a-file" / "c.png")
    (tmp_path / "link.png").symlink_to("far/away/c.png")  # --force writes through a link: not to a missing folder
    with pytest.raises(plotting.PlotError, match=r"link\.png: links to .*far/away/c\.png, whose folder does not exist"):
        plotting.render([run], output=tmp_path / "link.png", force=True)
    assert not (tmp_path / "far").exists()


def test_a_last_row_without_its_line_end_is_not_drawn(tmp_path: Path):
    """A row being written (a run in progress) or cut by a crash: "-1680.87" read as -16 was drawn."""
    run = write_trainer_run(tmp_path / "run", 600, log_every=200, eval_every=200)
    text = (run / "metrics.csv").read_text()
    cut_at = text.rindex(f",{eval_return(600)},") + 4  # the last row, cut inside its evaluation: ",-94"
    (run / "metrics.csv").write_text(text[:cut_at])
    assert plotting.read_run(run).columns["eval/mean_return"] == {200: eval_return(200), 400: eval_return(400)}


@pytest.mark.parametrize(("appended", "lines"), [
    ("garbage,,x\n", "line 5"),  # too few cells
    ("800,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30\n", "line 5"),  # too many
    ("eight hundred" + ",-1" * 40 + "\n" + "x" * 10 + "\n",
     "left out 2 line(s) that are not rows of rdpg's log (lines 5 and 6)"),
])
def test_rows_that_are_no_log_rows_are_left_out_and_said(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                         appended: str, lines: str):
    """Lines of another file appended to metrics.csv, or an edit gone wrong: the plot left them out without a
    word (a resume refuses such a log)."""
    run = write_trainer_run(tmp_path / "run", 600, log_every=200, eval_every=200)
    with open(run / "metrics.csv", "a") as f:
        f.write(appended)
    with caplog.at_level("WARNING", logger="rdpg_cli"):
        columns = plotting.read_run(run).columns
    assert columns["eval/mean_return"] == {step: eval_return(step) for step in (200, 400, 600)}
    (record,) = [r for r in caplog.records if "rows of rdpg's log" in r.getMessage()]
    assert record.getMessage().startswith(f"{run / 'metrics.csv'}: ") and lines in record.getMessage()
    caplog.clear()
    write_trainer_run(tmp_path / "clean", 600, log_every=200, eval_every=200)
    with caplog.at_level("WARNING", logger="rdpg_cli"):
        plotting.read_run(tmp_path / "clean")
    assert not caplog.records


def test_a_metrics_file_that_is_not_a_regular_file_is_refused_not_waited_on(tmp_path: Path):
    """A FIFO named metrics.csv blocked `rdpg plot` for ever."""
    import os

    (tmp_path / "run").mkdir()
    os.mkfifo(tmp_path / "run" / "metrics.csv")
    with pytest.raises(plotting.PlotError, match=r"metrics\.csv: not a regular file"):
        plotting.read_run(tmp_path / "run")


def test_dollar_signs_in_a_title_or_a_run_name_are_drawn_as_typed(tmp_path: Path):
    """matplotlib reads a pair of $ as mathematical notation: a title '$x^$', or a run named 'cost$x^$' (which
    rdpg train accepts), failed the drawing with a traceback, and such a run could never be plotted."""
    pytest.importorskip("matplotlib")
    run = write_trainer_run(tmp_path / "runs" / "cost$x^$", 1000, log_every=100, eval_every=500)
    config = yaml.safe_load((run / "config.yaml").read_text())
    (run / "config.yaml").write_text(yaml.safe_dump({**config, "name": "cost$x^$"}))
    result = plotting.render([run], output=tmp_path / "c.png", title="$x^$ and $\\frac{$")
    assert (tmp_path / "c.png").stat().st_size > 0 and len(result.curves) == 1
    assert "cost$x^$" in result.curves[0].label
