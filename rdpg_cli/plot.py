"""Learning curves from run folders: what ``rdpg plot`` draws.

Each run folder gives ``metrics.csv`` (deterministic scalars), ``timing.csv`` (wall-clock rates, joined on
``env_steps``) and ``config.yaml``. Runs whose configs differ only in ``train.seed`` (and in keys that do not
change what is measured, ``NOT_THE_EXPERIMENT``) are seeds of one experiment: they are drawn as one curve, the
mean across seeds with a shaded band. matplotlib is the optional ``plot`` extra; it is imported only when a
figure is drawn, on the Agg canvas, so plotting works on a machine without a display.

Only the standard library is imported at module load: the CLI imports this module to build its options and
its shell completion, and ``rdpg --help`` should not pay for numpy or matplotlib.
"""

from __future__ import annotations

import contextlib
import csv
import difflib
import importlib
import io
import json
import logging
import math
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from rdpg_cli.errors import RdpgError
from rdpg_cli.extras import install_hint
from rdpg_cli.signals import stop_if_a_signal_was_swallowed
from rdpg_cli.input_files import (blocked_folder_problem, make_folder, name_problem, place_new, remove_made_folders,
                                  temporary_name)

log = logging.getLogger(__name__)

DEFAULT_METRIC = "eval/mean_return"
# Config keys that do not change what a run measures: runs differing only in these are seeds of one experiment.
# (The budget only cuts a curve shorter; logging and checkpoints are bookkeeping; the seed is what varies.)
NOT_THE_EXPERIMENT = frozenset({"train.seed", "train.steps", "train.log_every", "train.checkpoint_every",
                                "train.save_replay", "description"})
DEFAULT_SIZE = (1200, 750)
SIZE_LIMITS = (200, 8000)  # pixels per side: smaller has no room for labels, larger is a mistake
FIGURE_WIDTH_INCHES = 8.0  # the figure is laid out at this width and scaled, so every size looks alike
OUTPUT_SUFFIXES = (".png", ".svg", ".pdf")

# What each column of metrics.csv / timing.csv means, for the title and the y-axis label (with its unit).
# A column missing here still plots, under its own name.
METRIC_LABELS: dict[str, tuple[str, str]] = {
    "eval/mean_return": ("Evaluation return", "mean return per episode (deterministic policy)"),
    "eval/std_return": ("Evaluation return spread", "std of return across evaluation episodes"),
    "eval/best_return": ("Best evaluation return", "best mean evaluation return so far"),
    "rollout/episode_return": ("Training episode return", "return per episode (with exploration noise)"),
    "rollout/episode_length": ("Training episode length", "episode length (env steps)"),
    "train/critic_loss": ("Critic loss", "critic loss (TD error, mean per sample; twin critics: the sum of both)"),
    "train/actor_loss": ("Actor loss", "actor loss (−Q(s, μ(s)), mean per sample)"),
    "train/mean_q": ("Mean Q value", "Q(s, a) (expected discounted return, times agent.reward_scale)"),
    "train/out_of_bounds": ("Actor outputs out of bounds", "share of actor outputs outside the bounds"),
    "time/steps_per_second": ("Training speed", "env steps per second (wall clock)"),
    "time/updates_per_second": ("Update speed", "gradient steps per second (wall clock)"),
    "wall_seconds": ("Wall-clock time", "training time (s)"),
    "episodes": ("Episodes", "episodes finished"),
    "gradient_steps": ("Gradient steps", "gradient steps taken"),
}


class PlotError(RdpgError):
    """A run folder, metric or option given to ``rdpg plot`` cannot be used."""


class Band(str, Enum):
    """What the shaded band around a mean over seeds shows."""

    minmax = "minmax"
    std = "std"

    @property
    def legend(self) -> str:
        return "line: mean over seeds, band: min–max" if self is Band.minmax \
            else "line: mean over seeds, band: ±1 std"


@dataclass
class Run:
    """One run folder, read."""

    path: Path
    name: str
    env_id: str
    seed: int | None
    group_key: str  # runs with equal keys are seeds of one experiment
    settings: dict[str, Any]  # flattened config (dotted keys), for labelling experiments that share a name
    columns: dict[str, dict[int, float]] = field(default_factory=dict)  # metric -> {env_steps: value}


@dataclass
class Curve:
    """What is drawn for one experiment: a run, or the mean of several seeds with a band."""

    label: str
    runs: list[Run]
    steps: list[float]
    mean: list[float]
    low: list[float] | None = None
    high: list[float] | None = None


@dataclass
class PlotResult:
    output: Path
    width: int
    height: int
    curves: list[Curve]
    skipped: list[Path]  # runs without a value of the metric


# ------------------------------------------------------------------------------------------------ reading


def find_runs(paths: Sequence[Path]) -> list[Path]:
    """Run folders named on the command line; a folder without metrics.csv stands for every run below it
    (``rdpg plot runs/pendulum`` plots all its seeds)."""
    found: list[Path] = []
    for path in paths:
        path = Path(path)
        if not path.exists():
            raise PlotError(f"{path}: no such run folder")
        if path.is_file():
            if path.name == "metrics.csv":
                path = path.parent
            else:
                raise PlotError(f"{path}: give a run folder (it holds metrics.csv), not a file")
        if (path / "metrics.csv").is_file():
            found.append(path)
            continue
        below = sorted(p.parent for p in path.rglob("metrics.csv"))
        if not below:
            raise PlotError(f"{path}: no metrics.csv in it or below it; is it an rdpg run folder?")
        found.extend(below)
    unique: list[Path] = []
    for path in found:  # the same run named twice (directly and through its parent) is drawn once
        if path.resolve() not in {p.resolve() for p in unique}:
            unique.append(path)
    return unique


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO would block the plot for ever
            raise PlotError(f"{path}: not a regular file")
        with open(path, newline="", encoding="utf-8") as f:
            text = f.read()
        # A last line without its line end is a row being written (a run in progress) or one cut by a crash:
        # its last number may be cut short (-16 of -1680.87), so it is not drawn.
        text = text[:text.rfind("\n") + 1]
        reader = csv.DictReader(io.StringIO(text))
        header = list(reader.fieldnames or [])
        rows, foreign = [], []
        for row in reader:
            # A row of another length (csv puts extra cells under None, missing ones as None) or without a
            # step is no row rdpg wrote (a file edited, or another file's lines appended): left out, and said.
            if None in row or None in row.values() or not _is_step(row.get("env_steps")):
                foreign.append(reader.line_num)
            else:
                rows.append(row)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise PlotError(f"{path}: cannot read it ({getattr(exc, 'strerror', None) or exc})") from None
    if not header:  # created, nothing written yet (a run that has just started): no values, like a header alone
        return [], []
    if "env_steps" not in header:
        raise PlotError(f"{path}: no env_steps column; is it an rdpg metrics file?")
    if foreign:
        shown = foreign if len(foreign) <= 3 else [*foreign[:2], "...", foreign[-1]]
        where = f"line {shown[0]}" if len(shown) == 1 else f"lines {', '.join(map(str, shown[:-1]))} and {shown[-1]}"
        log.warning("%s: left out %d line(s) that are not rows of rdpg's log (%s)", path, len(foreign), where)
    return header, rows


def _is_step(text: str | None) -> bool:
    """Whether a CSV cell is an env step count, as rdpg writes it: digits."""
    return text is not None and text.isascii() and text.isdigit()


def _number(text: str | None) -> float | None:
    """A CSV cell as a finite float; blanks (no value in that interval) and non-finite cells are None."""
    if text is None or text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and prefix == "":  # sections only; env.kwargs stays one value
            out.update(_flatten(value, f"{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _evaluation_steps(header: list[str], rows: list[dict[str, str]], eval_every: Any) -> list[int | None]:
    """For each row of metrics.csv, the env step of the evaluation its eval/ columns hold, or None where they
    hold none or repeat one an earlier row holds: each evaluation is then read once, where it ran.

    The trainer evaluates at every multiple of ``train.eval_every`` and writes a row at every multiple of
    ``train.log_every``; each row carries the latest evaluation so far, which ran at the last multiple of
    eval_every at or before the row's step (metrics.csv has no column for it). When the intervals do not line
    up (log every 200, evaluate every 500), that is not the row's own step: the evaluation at 500 is in the row
    of step 600, and is drawn at 500. Without a usable eval_every (no config.yaml), a row holds a new
    evaluation when its eval/ values differ from the previous row's, and it is drawn at the row's step."""
    eval_columns = [c for c in header if c.startswith("eval/")]
    known = isinstance(eval_every, int) and not isinstance(eval_every, bool) and eval_every > 0
    out: list[int | None] = []
    previous: Any = None
    for row in rows:
        step = _number(row.get("env_steps"))
        cells = tuple(row.get(c) or "" for c in eval_columns)
        if step is None or not any(cells):
            out.append(None)
            continue
        if known:
            ran_at = int(step) - int(step) % eval_every
            new = ran_at > 0 and ran_at != previous  # step 0: no evaluation has run, whatever the row says
            previous = ran_at
        else:
            ran_at, new = int(step), cells != previous
            previous = cells
        out.append(ran_at if new else None)
    return out


def read_run(path: Path) -> Run:
    """Read one run folder: its config (for the name, seed and grouping) and every column of its CSVs."""
    import yaml

    config: dict[str, Any] = {}
    config_path = path / "config.yaml"
    if config_path.is_file():
        try:
            loaded = yaml.safe_load(config_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            loaded = None
        if isinstance(loaded, dict):
            config = loaded
        else:
            log.warning("%s: config.yaml does not parse; the run is drawn on its own", path)
    settings = _flatten(config)
    seed = settings.get("train.seed")
    key_settings = {k: v for k, v in settings.items() if k not in NOT_THE_EXPERIMENT}
    group_key = json.dumps(key_settings, sort_keys=True, default=str) if config else f"path:{path.resolve()}"
    run = Run(
        path=path,
        name=str(config.get("name") or path.name),
        env_id=str(settings.get("env.id") or "?"),
        seed=seed if isinstance(seed, int) else None,
        group_key=group_key,
        settings=settings,
    )

    header, rows = _read_csv(path / "metrics.csv")
    log.debug("%s: %s, seed %s, %d log rows", path, run.name, run.seed, len(rows))
    eval_every = settings.get("train.eval_every")
    eval_steps = _evaluation_steps(header, rows, eval_every)
    for column in header:
        if column == "env_steps":
            continue
        values: dict[int, float] = {}
        for i, row in enumerate(rows):
            step = _number(row.get("env_steps"))
            value = _number(row.get(column))
            if step is None or value is None:
                continue
            if column.startswith("eval/"):
                if eval_steps[i] is None:  # a repeat of an evaluation an earlier row holds
                    continue
                values[eval_steps[i]] = value
            else:
                values[int(step)] = value
        run.columns[column] = values
    timing_path = path / "timing.csv"
    if timing_path.is_file():
        header, rows = _read_csv(timing_path)
        for column in header:
            if column == "env_steps":
                continue
            run.columns[column] = {
                int(step): value for row in rows
                if (step := _number(row.get("env_steps"))) is not None
                and (value := _number(row.get(column))) is not None}
    return run


def available_metrics(runs: Iterable[Run]) -> list[str]:
    names: set[str] = set()
    for run in runs:
        names.update(run.columns)
    # Namespaced scalars first (the ones people plot), then the counters.
    return sorted(names, key=lambda n: ("/" not in n, n))


# ------------------------------------------------------------------------------------------------ curves


def _smooth(values: list[float], window: int) -> list[float]:
    """Trailing moving average over ``window`` points (fewer at the start), as rl-zoo's plots do."""
    if window <= 1:
        return list(values)
    out, total = [], 0.0
    for i, value in enumerate(values):
        total += value
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def _series(run: Run, metric: str, window: int) -> tuple[list[float], list[float]]:
    points = sorted(run.columns.get(metric, {}).items())
    steps = [float(s) for s, _ in points]
    return steps, _smooth([v for _, v in points], window)


def _distinguishing_settings(run: Run, rivals: list[Run]) -> list[str]:
    """Few settings of ``run`` that, together, differ from every rival's: greedily the one that tells it apart
    from the most rivals not yet told apart (ties alphabetically), so every label of a plot is unique however
    many settings differ (the first few in alphabetical order need not tell two experiments apart)."""
    keys = sorted(k for k in run.settings if k not in NOT_THE_EXPERIMENT)
    left = list(rivals)
    chosen: list[str] = []
    while left:
        separated = {k: sum(r.settings.get(k) != run.settings[k] for r in left) for k in keys}
        best = max(keys, key=separated.__getitem__, default=None)  # the first of equals: alphabetical
        if best is None or separated[best] == 0:
            break
        chosen.append(best)
        left = [r for r in left if r.settings.get(best) == run.settings[best]]
    return sorted(chosen)


def _labels(groups: list[list[Run]]) -> list[str]:
    """Experiments are named by their preset; experiments that share a name get the settings that tell them
    apart (``pendulum (agent.actor_lr=0.0001)``), and on a plot of several environments each names its own."""
    several_envs = len({g[0].env_id for g in groups}) > 1
    labels = []
    for group in groups:
        first = group[0]
        rivals = [g[0] for g in groups if g[0].name == first.name and g[0].group_key != first.group_key]
        differing = _distinguishing_settings(first, rivals)
        details = [f"{k}={first.settings[k]}" for k in differing]
        if rivals and not differing:  # same name, no config to tell them apart: the folder does
            details.append(str(first.path))
        if several_envs and first.env_id != "?" and first.env_id not in first.name:
            details.insert(0, first.env_id)
        labels.append(first.name + (f" ({', '.join(details)})" if details else ""))
    return labels


def build_curves(runs: list[Run], metric: str, band: Band, window: int = 1) -> tuple[list[Curve], list[Path]]:
    """Group runs into experiments and reduce each to a curve; runs without a value of ``metric`` are left
    out (and returned) rather than failing the plot."""
    import numpy as np

    with_values = [r for r in runs if r.columns.get(metric)]
    skipped = [r.path for r in runs if not r.columns.get(metric)]
    for path in skipped:
        log.warning("%s: no value of %s yet; left out of the plot", path, metric)
    groups: dict[str, list[Run]] = {}
    for run in with_values:
        groups.setdefault(run.group_key, []).append(run)
    ordered = list(groups.values())
    curves = []
    for label, group in zip(_labels(ordered), ordered, strict=True):
        series = [_series(run, metric, window) for run in group]
        if len(group) == 1:
            steps, values = series[0]
            seed = f", seed {group[0].seed}" if group[0].seed is not None else ""
            curves.append(Curve(f"{label}{seed}", group, steps, values))
            continue
        # Seeds log at the same env steps when they share a config; interpolating onto the steps they all
        # cover also copes with a run cut short (or resumed with another log interval).
        start = max(s[0][0] for s in series)
        stop = min(s[0][-1] for s in series)
        grid = sorted({x for steps, _ in series for x in steps if start <= x <= stop})
        if not grid:
            log.warning("%s: its %d seeds cover no common env steps; drawn one by one", label, len(group))
            for run, (steps, values) in zip(group, series, strict=True):
                curves.append(Curve(f"{label}, seed {run.seed}", [run], steps, values))
            continue
        # A mean over fewer seeds past the shortest run would jump where a seed drops out: the curve stops
        # there, and says so (a seed still training cuts back every finished one's curve).
        outside = sum(1 for steps, _ in series for x in steps if not start <= x <= stop)
        if outside:
            log.warning("%s: drawn over env steps %d-%d, where all %d runs have values; %d value(s) of the "
                        "longer runs outside that range are left out", label, start, stop, len(group), outside)
        stacked = np.array([np.interp(grid, steps, values) for steps, values in series])
        mean = stacked.mean(axis=0)
        if band is Band.std:
            spread = stacked.std(axis=0, ddof=1)
            low, high = mean - spread, mean + spread
        else:
            low, high = stacked.min(axis=0), stacked.max(axis=0)
        seeds = sorted({r.seed for r in group if r.seed is not None})
        seed_text = f"{len(group)} seeds" if len(seeds) == len(group) else f"{len(group)} runs"
        curves.append(Curve(f"{label}, {seed_text}", group, list(grid), mean.tolist(), low.tolist(),
                            high.tolist()))
    return curves, skipped


# ------------------------------------------------------------------------------------------------ drawing


def parse_size(size: str | None, width: int | None, height: int | None) -> tuple[int, int]:
    """``--size WxH`` or ``--width`` / ``--height`` in pixels; either of those alone keeps the default's
    proportions (``--width 800``: 800x500)."""
    if size is not None:
        if width is not None or height is not None:
            raise PlotError("--size: give either --size WIDTHxHEIGHT or --width/--height, not both")
        parts = size.lower().replace("×", "x").split("x")
        try:
            width, height = (int(p) for p in parts)
        except ValueError:
            raise PlotError(f"--size {size}: expected WIDTHxHEIGHT in pixels, e.g. 1200x750") from None
    given = {"width": width, "height": height}
    if width is not None and height is None:
        height = round(width * DEFAULT_SIZE[1] / DEFAULT_SIZE[0])
    elif height is not None and width is None:
        width = round(height * DEFAULT_SIZE[0] / DEFAULT_SIZE[1])
    width = DEFAULT_SIZE[0] if width is None else width
    height = DEFAULT_SIZE[1] if height is None else height
    low, high = SIZE_LIMITS
    for name, value in (("width", width), ("height", height)):
        if not low <= value <= high:
            if size is not None:
                option = f"--size {size}"
            elif given[name] is not None:
                option = f"--{name}"
            else:  # kept in proportion to the one given
                other = "height" if name == "width" else "width"
                option = f"--{other} {given[other]} (the {name} in proportion)"
            raise PlotError(f"{option}: {name} {value} pixels is outside {low}..{high}")
    return width, height


def _steps_formatter(value: float, _position: int) -> str:
    """50000 -> 50k, 1500000 -> 1.5M: env-step axes read at a glance."""
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.4g}{suffix}"
    return f"{value:.0f}"


MISSING_MATPLOTLIB = f"rdpg plot needs matplotlib, the 'plot' extra: {install_hint('plot')}"


def require_matplotlib() -> None:
    """A PlotError naming the extra when matplotlib cannot be imported. ``render`` calls it before it looks at
    any option or run folder: without the extra nothing can be drawn, and that is what the user needs to hear."""
    try:
        for module in ("matplotlib.figure", "matplotlib.backends.backend_agg"):  # what _figure imports
            importlib.import_module(module)
    except ImportError:
        raise PlotError(MISSING_MATPLOTLIB) from None


def _figure(width: int, height: int) -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise PlotError(MISSING_MATPLOTLIB) from None
    dpi = width / FIGURE_WIDTH_INCHES
    # A quarter pixel more than asked: Agg truncates the float size to whole pixels, and width/dpi*dpi can
    # land a hair under the integer.
    figure = Figure(figsize=((width + 0.25) / dpi, (height + 0.25) / dpi), dpi=dpi, layout="constrained")
    FigureCanvasAgg(figure)  # the non-interactive canvas: no display, no global pyplot state
    return figure


def _literal(text: str) -> str:
    """Text drawn as typed: matplotlib reads a pair of ``$`` as mathematical notation, and one it cannot parse
    (a title ``$x^$``, a preset named ``cost$x^$``) failed the drawing with a traceback."""
    return text.replace("$", r"\$")


def render(run_paths: Sequence[Path], metric: str = DEFAULT_METRIC, output: Path = Path("curve.png"),
           size: tuple[int, int] = DEFAULT_SIZE, band: Band = Band.minmax, smooth: int = 1,
           title: str | None = None, force: bool = False) -> PlotResult:
    """Draw ``metric`` against env steps for the runs in ``run_paths`` and write the figure to ``output``
    (an existing file only with ``force``)."""
    require_matplotlib()
    output = Path(output)
    if output.suffix.lower() not in OUTPUT_SUFFIXES:
        raise PlotError(f"--output {output}: give a {', '.join(OUTPUT_SUFFIXES[:-1])} or {OUTPUT_SUFFIXES[-1]} path")
    problem = name_problem(output)
    if problem:
        raise PlotError(f"--output {output}: {problem}")
    problem = blocked_folder_problem(output.parent)  # a missing folder is made, once the figure is drawn
    if problem:
        raise PlotError(f"--output {output}: {problem}")
    if output.is_dir():
        raise PlotError(f"--output {output}: is a folder")
    if os.path.lexists(output) and not force:  # a symbolic link to nothing too: the user's link
        raise PlotError(f"--output {output}: already exists; use --force to replace it")
    if smooth < 1:
        raise PlotError(f"--smooth: {smooth} must be >= 1 (1 draws the logged points as they are)")
    runs = [read_run(path) for path in find_runs(run_paths)]
    metrics = available_metrics(runs)
    if metric not in metrics:
        close = difflib.get_close_matches(metric, metrics, n=1, cutoff=0.5)  # as a preset's mistyped key is
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise PlotError(f"--metric {metric}: not in metrics.csv or timing.csv{hint}; available: {', '.join(metrics)}")
    curves, skipped = build_curves(runs, metric, band, smooth)
    if not curves:
        when = ("evaluations start after train.eval_every env steps" if metric.startswith("eval/") else
                "a row every train.log_every env steps; train/ columns once learning starts")
        raise PlotError(f"--metric {metric}: no run has a value yet ({when})")
    figure = _figure(*size)
    _draw(figure, curves, metric, band, smooth, title)
    # Drawn into a temporary file beside the output and moved over it whole: a stop or a full disk mid-write
    # leaves the image that was there (--force), never a cut-short one. A symbolic link stays one: its target
    # is replaced. The temporary name is short whatever the output's (a name near the file system's limit).
    target = output.resolve() if output.is_symlink() else output
    if output.is_symlink() and not target.parent.is_dir():  # (--force) rdpg makes no folder at a link's far end
        raise PlotError(f"--output {output}: links to {target}, whose folder does not exist")
    tmp = target.with_name(temporary_name(".rdpg-plot-", ".tmp"))
    made: list[Path] = []
    placed = False
    try:
        try:
            made = make_folder(output.parent)  # as `rdpg train --run-dir` and `rdpg export --output` do
        except OSError as exc:
            raise PlotError(f"--output {output}: cannot create its folder ({exc.strerror or exc})") from None
        figure.savefig(tmp, dpi=figure.dpi, format=output.suffix[1:].lower())
        stop_if_a_signal_was_swallowed()
        if force:
            os.replace(tmp, target)
        else:  # not over an image that appeared while drawing (another plot to the same output)
            place_new(tmp, target)
        placed = True
    except FileExistsError:
        raise PlotError(f"--output {output}: appeared while drawing (another plot to the same output?); it was "
                        "left as it is; use --force to replace it") from None
    except OSError as exc:
        raise PlotError(f"--output {output}: cannot write it ({exc.strerror or exc})") from None
    finally:
        # On a read-only file system unlink fails (EROFS) even for a file that is not there: that must not
        # replace the error that explains the failure.
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        if not placed:  # nothing of this plot is left, not even the folders it made
            remove_made_folders(made)
    log.debug("%s: %d curve(s) from %d run(s)", output, len(curves), len(runs) - len(skipped))
    return PlotResult(output, size[0], size[1], curves, skipped)


def _draw(figure: Any, curves: list[Curve], metric: str, band: Band, smooth: int, title: str | None) -> None:
    from matplotlib import colormaps
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    heading, y_label = METRIC_LABELS.get(metric, (metric, metric))
    envs = sorted({run.env_id for curve in curves for run in curve.runs if run.env_id != "?"})
    ax = figure.add_subplot()
    colors = colormaps["tab10"].colors if len(curves) <= 10 else colormaps["tab20"].colors
    for i, curve in enumerate(curves):
        color = colors[i % len(colors)]
        marker = "o" if len(curve.steps) <= 30 else None  # few points: show where they were measured
        ax.plot(curve.steps, curve.mean, color=color, linewidth=2.0, marker=marker, markersize=3.5,
                label=_literal(curve.label), zorder=3)
        if curve.low is not None and curve.high is not None:
            ax.fill_between(curve.steps, curve.low, curve.high, color=color, alpha=0.18, linewidth=0, zorder=2)
    # One environment goes in the title; several are named in the legend instead (the title would overflow).
    ax.set_title(_literal(title or (f"{heading} on {envs[0]}" if len(envs) == 1 else heading)), fontsize=13, loc="left",
                 pad=10, fontweight="bold")
    ax.set_xlabel("environment steps", fontsize=10.5)
    # An evaluation's columns are read once per evaluation, not per log row (read_run): the average runs over those.
    points = "evaluations" if metric.startswith("eval/") else "log rows"
    ax.set_ylabel(_literal(y_label) if smooth == 1 else f"{_literal(y_label)}\nmoving average of {smooth} {points}",
                  fontsize=10.5)
    ax.xaxis.set_major_formatter(FuncFormatter(_steps_formatter))
    ax.xaxis.set_major_locator(MaxNLocator(nbins=8, steps=[1, 2, 2.5, 5, 10]))
    ax.set_xlim(left=0)
    ax.grid(True, color="0.88", linewidth=0.8, zorder=0)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=9.5)
    banded = any(curve.low is not None for curve in curves)
    legend = ax.legend(loc="best", frameon=True, framealpha=0.9, edgecolor="0.85", fontsize=9,
                       title=band.legend if banded else None, title_fontsize=8.5, alignment="left")
    if banded:
        legend.get_title().set_color("0.35")
