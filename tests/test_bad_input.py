"""Issue 7's bad-input catalogue, through the real entry point (``python -m rdpg_cli``, the console script's
``main()``): every case exits 2 with exactly one non-empty line on stderr that names the file, key or value,
prints no traceback, and leaves every file the user had exactly as it was (and adds none).

Cases found before TensorFlow loads take a fraction of a second; the checkpoint cases of ``rdpg evaluate``
load it (a few seconds each) and share one tiny training run per session. More crafted checkpoints are
read in-process by tests/test_checkpoint_security.py.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import TINY as CONFTEST_TINY
from conftest import rdpg as forked_rdpg  # in a process forked from one that imported TensorFlow
import yaml

TINY_RUN = ["train", "--preset", "pendulum", "--steps", "300", *CONFTEST_TINY,
            "--set", "train.eval_every=300"]
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


NARROW = {"COLUMNS": "80", "TERM": "dumb"}  # a narrow console: long messages must not wrap


def rdpg(*args: str, cwd: Path, timeout: float = 120, fresh: bool = False) -> subprocess.CompletedProcess:
    """With a narrow console, forked from a zygote started with it (conftest), or with ``fresh`` in a fresh
    interpreter: there TensorFlow's own start-up log, which rdpg hides, would show on an error path."""
    return forked_rdpg(*args, cwd=cwd, timeout=timeout, env=NARROW, check=False, fresh=fresh, own_zygote=True)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """checkpoint.h5 of a 300-step pendulum run with [16] networks, trained once per session."""
    base = tmp_path_factory.getbasetemp() / "tiny-run"
    checkpoint = base / "run" / "checkpoint.h5"
    if not checkpoint.exists():
        base.mkdir(exist_ok=True)
        result = rdpg(*TINY_RUN, "--run-dir", "run", "--quiet", cwd=base, timeout=300)
        assert result.returncode == 0, result.stderr
    assert checkpoint.is_file()
    return checkpoint


# ------------------------------------------------------------------------------------------ the cases


@dataclass(frozen=True)
class Symlink:
    """A symbolic link a case's folder holds, to ``target``."""

    target: str


@dataclass
class Case:
    id: str
    args: list[str]
    fragments: list[str]  # each must appear in the one stderr line
    files: dict[str, str | bytes | Symlink] = field(default_factory=dict)  # written into the folder first
    checkpoint: Callable[[h5py.File], None] | None = None  # crafts ckpt.h5 from the tiny run's checkpoint
    marks: tuple = ()
    fresh: bool = False  # in a fresh interpreter: one case of each command that fails once TensorFlow has started


GOOD = "env:\n  id: Pendulum-v1\naction_bounds:\n  low: [-2.0]\n  high: [2.0]\n"


def preset(extra: str) -> dict[str, str]:
    return {"p.yaml": GOOD + extra}


def set_attr(name: str, value: object) -> Callable[[h5py.File], None]:
    def craft(f: h5py.File) -> None:
        f.attrs[name] = value
    return craft


def replace_dataset(path: str, **create: object) -> Callable[[h5py.File], None]:
    def craft(f: h5py.File) -> None:
        del f[path]
        f.create_dataset(path, **create)
    return craft


def change_stored_config(**network: object) -> Callable[[h5py.File], None]:
    def craft(f: h5py.File) -> None:
        config = yaml.safe_load(f.attrs["config"])
        config["network"].update(network)
        f.attrs["config"] = yaml.safe_dump(config)
    return craft


def delete_attr(name: str) -> Callable[[h5py.File], None]:
    def craft(f: h5py.File) -> None:
        del f.attrs[name]
    return craft


def another_env(env_id: str) -> Callable[[h5py.File], None]:
    """The checkpoint names ``env_id`` (its attribute and its stored config), whose spaces are not the ones
    the weights were trained on."""
    def craft(f: h5py.File) -> None:
        config = yaml.safe_load(f.attrs["config"])
        config["env"]["id"] = env_id
        f.attrs["config"] = yaml.safe_dump(config)
        f.attrs["env_id"] = env_id
    return craft


def unchanged(f: h5py.File) -> None:
    """The tiny run's checkpoint as it is: the case is about another argument."""


# Episodes that would outlast the test's timeout: a case that uses them is refused before any episode runs.
FOREVER = ["--episodes", "1000000"]


def truncate(f: h5py.File) -> None:
    """Marker: ckpt.h5 is the first half of the real file's bytes (handled in the test)."""


CASES = [
    # --- presets
    Case("unknown preset name lists the shipped ones", ["train", "--preset", "pendullum"],
         ["unknown preset 'pendullum'", "did you mean 'pendulum'", "pendulum", "mountaincar"]),
    Case("missing preset file", ["train", "--preset", "nope.yaml"], ["nope.yaml: preset file not found"]),
    Case("preset path is a folder", ["train", "--preset", "folder.yaml"], ["folder.yaml: is a folder"],
         files={"folder.yaml/keep": ""}),
    Case("preset path is a device", ["train", "--preset", "/dev/zero"], ["/dev/zero: not a regular file"]),
    Case("preset not readable (mode 000)", ["train", "--preset", "locked.yaml"],
         ["locked.yaml: cannot read the file: Permission denied"], files={"locked.yaml": GOOD},
         marks=(pytest.mark.skipif(IS_ROOT, reason="root reads files whatever their mode"),)),
    Case("preset not UTF-8", ["train", "--preset", "p.yaml"], ["p.yaml: not UTF-8 text (byte 12 on line 2)"],
         files={"p.yaml": b"env:\n  id: P\xe9ndulum-v1\n"}),
    Case("preset name too long", ["train", "--preset", "x" * 300 + ".yaml"], ["File name too long"]),
    Case("empty preset", ["train", "--preset", "p.yaml"], ["p.yaml: the file is empty"], files={"p.yaml": "\n"}),
    Case("YAML syntax error", ["train", "--preset", "p.yaml"], ["p.yaml: YAML does not parse at line 3"],
         files={"p.yaml": "env:\n  id: Pendulum-v1\n agent: [\n"}),
    Case("YAML key twice", ["train", "--preset", "p.yaml"],
         ["p.yaml: YAML does not parse at line 3, column 3: key 'id' given twice (first at line 2)"],
         files={"p.yaml": "env:\n  id: Pendulum-v1\n  id: CartPole-v1\n"}),
    Case("YAML date that does not exist", ["train", "--preset", "p.yaml"],
         ["p.yaml: YAML does not parse at line 6", "'2001-13-45'"], files=preset("name: 2001-13-45\n")),
    Case("top level not a mapping", ["train", "--preset", "p.yaml"],
         ["p.yaml: the top level must be a mapping of sections, got a list"], files={"p.yaml": "- env\n- agent\n"}),
    Case("unknown section", ["train", "--preset", "p.yaml"],
         ["p.yaml: agnet: unknown section (did you mean 'agent'?)"], files=preset("agnet:\n  gamma: 0.9\n")),
    Case("unknown key", ["train", "--preset", "p.yaml"],
         ["p.yaml: agent.gama: unknown key (did you mean 'agent.gamma'?)"], files=preset("agent:\n  gama: 0.9\n")),
    Case("string for a number", ["train", "--preset", "p.yaml"],
         ["p.yaml: agent.batch_size: expected an integer, got the string '64'"],
         files=preset("agent:\n  batch_size: '64'\n")),
    Case("YAML 1.1 exponent is a string", ["train", "--preset", "p.yaml"],
         ["p.yaml: agent.actor_lr: expected a number, got the string '1e-3'", "1.0e-03"],
         files=preset("agent:\n  actor_lr: 1e-3\n")),
    Case("list for a scalar", ["train", "--preset", "p.yaml"],
         ["p.yaml: agent.gamma: expected a number, got a list"], files=preset("agent:\n  gamma: [0.9]\n")),
    Case("boolean spelled as a string", ["train", "--preset", "p.yaml"],
         ["p.yaml: agent.twin_critics: expected true/false, got the string 'yes'"],
         files=preset("agent:\n  twin_critics: 'yes'\n")),
    Case("zero batch size", ["train", "--preset", "p.yaml"], ["p.yaml: agent.batch_size: 0 must be > 0"],
         files=preset("agent:\n  batch_size: 0\n")),
    Case("negative replay size", ["train", "--preset", "p.yaml"], ["p.yaml: replay.size: -10 must be > 0"],
         files=preset("replay:\n  size: -10\n")),
    Case("zero steps in the preset", ["train", "--preset", "p.yaml"], ["p.yaml: train.steps: 0 must be > 0"],
         files=preset("train:\n  steps: 0\n")),
    Case("zero units in a layer", ["train", "--preset", "p.yaml"],
         ["p.yaml: network.actor_layers: [64, 0] every entry must be > 0"],
         files=preset("network:\n  actor_layers: [64, 0]\n")),
    Case("gamma zero", ["train", "--preset", "p.yaml"], ["p.yaml: agent.gamma: 0.0 must be in (0, 1]"],
         files=preset("agent:\n  gamma: 0.0\n")),
    Case("gamma above one", ["train", "--preset", "pendulum", "--set", "agent.gamma=1.5"],
         ["--set agent.gamma: 1.5 must be in (0, 1]"]),
    Case("tau zero", ["train", "--preset", "p.yaml"], ["p.yaml: agent.target_update: 0.0 must be > 0"],
         files=preset("agent:\n  target_update: 0.0\n")),
    Case("tau above one and not a period", ["train", "--preset", "p.yaml"],
         ["p.yaml: agent.target_update: 1.5 must be < 1 (soft) or a whole number"],
         files=preset("agent:\n  target_update: 1.5\n")),
    Case("bounds length mismatch", ["train", "--preset", "p.yaml"],
         ["p.yaml: action_bounds: low has 2 entries and high 1"],
         files={"p.yaml": "env: {id: Pendulum-v1}\naction_bounds: {low: [-1.0, -1.0], high: [1.0]}\n"}),
    Case("low not below high", ["train", "--preset", "p.yaml"],
         ["p.yaml: action_bounds: dimension 0: low 1.0 must be < high 1.0"],
         files={"p.yaml": "env: {id: Pendulum-v1}\naction_bounds: {low: [1.0], high: [1.0]}\n"}),
    Case("bounds beyond the action space", ["train", "--preset", "pendulum", "--set", "action_bounds.low=[-3.0]"],
         ["pendulum.yaml with --set action_bounds.low: action_bounds: dimension 0: [-3.0, 2.0] lies outside the "
          "action space [-2.0, 2.0] of Pendulum-v1"]),
    Case("bounds with more dimensions than the env", ["train", "--preset", "p.yaml"],
         ["p.yaml: action_bounds: 2 entries but Pendulum-v1 has 1 action dimensions"],
         files={"p.yaml": "env: {id: Pendulum-v1}\naction_bounds: {low: [-1.0, -1.0], high: [1.0, 1.0]}\n"}),
    Case("NaN", ["train", "--preset", "p.yaml"], ["p.yaml: agent.gamma: nan is not a finite number"],
         files=preset("agent:\n  gamma: .nan\n")),
    Case("inf in bounds", ["train", "--preset", "p.yaml"],
         ["p.yaml: action_bounds.high: [inf] holds a non-finite number"],
         files={"p.yaml": "env: {id: Pendulum-v1}\naction_bounds: {low: [-2.0], high: [.inf]}\n"}),
    Case("NaN in env kwargs", ["train", "--preset", "pendulum", "--set", "env.kwargs={g: .nan}"],
         ["--set env.kwargs: holds the non-finite number nan"]),
    Case("env kwargs the env fails on", ["train", "--preset", "pendulum", "--set", "env.kwargs={g: abc}"],
         ["pendulum.yaml with --set env.kwargs: env.kwargs: Pendulum-v1 fails with {'g': 'abc'}: the environment "
          "raised TypeError"]),
    Case("discrete-action environment", ["train", "--preset", "pendulum", "--set", "env.id=CartPole-v1",
                                         "--set", "action_bounds.low=null", "--set", "action_bounds.high=null"],
         ["with --set env.id: env.id: CartPole-v1 has action space Discrete(2); rdpg needs continuous (Box) "
          "actions"]),
    Case("environment id that does not exist", ["train", "--preset", "p.yaml"],
         ["p.yaml: env.id: unknown environment 'NoSuchEnv-v0'"], files={"p.yaml": "env:\n  id: NoSuchEnv-v0\n"}),
    Case("environment version that does not exist", ["train", "--preset", "pendulum", "--set", "env.id=Pendulum-v9"],
         ["pendulum.yaml with --set env.id: env.id: 'Pendulum-v9'"]),
    # gymnasium warns "out of date" before it refuses: the warning is dropped, the refusal stays one line.
    Case("environment version gymnasium deprecated", ["train", "--preset", "pendulum", "--set", "env.id=Pendulum-v0"],
         ["pendulum.yaml with --set env.id: env.id: 'Pendulum-v0'", "deprecated"]),
    # "human" opened a window: without a display SDL aborted the process (exit 134), leaving a run folder.
    Case("render mode in the preset's env.kwargs", ["train", "--preset", "p.yaml"],
         ["p.yaml: env.kwargs: render_mode 'human' is rdpg's to choose"],
         files={"p.yaml": "env:\n  id: Pendulum-v1\n  kwargs: {render_mode: human}\n"}),
    Case("render mode set on the command line", ["train", "--preset", "pendulum", "--set",
                                                 "env.kwargs.render_mode=human"],
         ["--set env.kwargs.render_mode: env.kwargs: render_mode 'human' is rdpg's to choose"]),
    # An unset shell variable (--run-dir "$DIR") trained into the current folder, among the user's files.
    Case("empty run folder", ["train", "--preset", "pendulum", "--run-dir", ""],
         ["Invalid value for '--run-dir': empty; give a path (. for the current folder)"]),
    # Output files: not the run folder's hint of ".", a folder they refuse.
    Case("empty video path", ["evaluate", "ckpt.h5", "--video", ""],
         ["Invalid value for '--video': empty; give the path to write"]),
    Case("empty export path", ["export", "ckpt.h5", "--output", ""],
         ["Invalid value for '--output': empty; give the path to write"]),
    Case("empty figure path", ["plot", ".", "-o", ""], ["Invalid value for '--output' / '-o': empty; give the path"]),
    Case("unsafe YAML tag", ["train", "--preset", "p.yaml"],
         ["p.yaml: YAML does not parse at line 2, column 7: could not determine a constructor for the tag",
          "python/object/apply:os.system"],
         files={"p.yaml": "env:\n  id: !!python/object/apply:os.system ['touch pwned']\n"}),
    Case("unsafe YAML tag at the top", ["train", "--preset", "p.yaml"], ["p.yaml: YAML does not parse at line 1"],
         files={"p.yaml": "!!python/object/new:subprocess.Popen [['touch', 'pwned']]\n"}),
    Case("run name that escapes runs/", ["train", "--preset", "p.yaml"],
         ["p.yaml: name: '../../x' must be a plain folder name"], files=preset("name: ../../x\n")),
    Case("presets show of a file that is not text", ["presets", "show", "p.yaml"],
         ["p.yaml: not UTF-8 text (byte 0 on line 1)"], files={"p.yaml": b"\xff\xfe\x00"}),
    Case("presets show of an unknown name", ["presets", "show", "pendullum"], ["unknown preset 'pendullum'"]),
    # Shown only once it is checked as train checks it; --verbose asks for the resolved preset, not a traceback.
    Case("presets show of YAML that does not parse", ["presets", "show", "p.yaml"],
         ["p.yaml: YAML does not parse at line 3"], files={"p.yaml": "agent:\n  gamma: [1, 2\n"}),
    Case("presets show --verbose of YAML that does not parse", ["presets", "show", "p.yaml", "--verbose"],
         ["p.yaml: YAML does not parse at line 3"], files={"p.yaml": "agent:\n  gamma: [1, 2\n"}),
    Case("presets show of a non-finite value", ["presets", "show", "p.yaml"],
         ["p.yaml: agent.gamma: nan is not a finite number"], files={"p.yaml": "agent:\n  gamma: .nan\n"}),
    Case("presets show --verbose of an unknown key", ["presets", "show", "p.yaml", "-v"],
         ["p.yaml: agent.gammma: unknown key (did you mean 'agent.gamma'?)"],
         files={"p.yaml": "agent:\n  gammma: 0.9\n"}),
    # ... and against its environment, as train checks it (these were shown with exit code 0).
    Case("presets show of an environment that does not exist", ["presets", "show", "p.yaml"],
         ["p.yaml: env.id: unknown environment 'NoSuchEnv-v0'"], files={"p.yaml": "env:\n  id: NoSuchEnv-v0\n"}),
    Case("presets show of bounds outside the action space", ["presets", "show", "p.yaml", "-q"],
         ["p.yaml: action_bounds: dimension 0: [-3.0, 3.0] lies outside the action space [-2.0, 2.0]"],
         files={"p.yaml": "env:\n  id: Pendulum-v1\naction_bounds:\n  low: [-3.0]\n  high: [3.0]\n"}),
    # --- --set
    Case("--set without =", ["train", "--preset", "pendulum", "--set", "agent.gamma"],
         ["--set agent.gamma: expected section.key=value"]),
    Case("--set unknown key", ["train", "--preset", "pendulum", "--set", "agent.bacth_size=32"],
         ["--set agent.bacth_size=32: unknown key 'agent.bacth_size' (did you mean 'agent.batch_size'?)"]),
    Case("--set wrong type", ["train", "--preset", "pendulum", "--set", "agent.batch_size=abc"],
         ["--set agent.batch_size: expected an integer, got the string 'abc'"]),
    Case("--set value not YAML", ["train", "--preset", "pendulum", "--set", "network.actor_layers=[16"],
         ["--set network.actor_layers=[16: the value does not parse as YAML"]),
    Case("--set unsafe tag", ["train", "--preset", "pendulum", "--set", "agent.gamma=!!python/name:os.system"],
         ["--set agent.gamma=!!python/name:os.system: the value does not parse as YAML"]),
    Case("--set value with markup-like brackets", ["train", "--preset", "pendulum", "--set", "env.id=[bold]x"],
         ["--set env.id=[bold]x: the value does not parse as YAML"]),
    Case("--set value with a newline", ["train", "--preset", "pendulum", "--set", "agent.gama=1\n2"],
         ["--set agent.gama=1\\n2: unknown key"]),
    # --- command line
    Case("unknown option", ["train", "--preset", "pendulum", "--bogus"], ["No such option: --bogus"]),
    Case("unknown command", ["trian"], ["No such command 'trian'"]),
    Case("no preset", ["train"], ["give --preset NAME|PATH"]),
    Case("empty preset name", ["train", "--preset", ""], ["the preset name is empty; give a shipped preset ("]),
    Case("--steps 0", ["train", "--preset", "pendulum", "--steps", "0"], ["--steps: 0 must be > 0"]),
    Case("--steps negative", ["train", "--preset", "pendulum", "--steps", "-5"], ["--steps: -5 must be > 0"]),
    Case("--steps not a number", ["train", "--preset", "pendulum", "--steps", "ten"], ["'--steps'"]),
    Case("--seed negative", ["train", "--preset", "pendulum", "--seed", "-1"], ["--seed: -1 must be in [0, 2**32)"]),
    # numpy's SeedSequence splits larger seeds into 32-bit words: 2**32 gave seed 0's episodes again
    # Valid numbers, too large for this machine: found when the networks and the replay memory are made,
    # after the run folder was; it is removed again.
    Case("replay larger than memory", ["train", "--preset", "pendulum", "--set", "replay.size=9000000000000000000",
                                       "--run-dir", "fresh"],
         ["pendulum.yaml with --set replay.size: replay.size: 9000000000000000000 transitions do not fit in memory "
          "(array is too big"], fresh=True),
    Case("networks larger than memory", ["train", "--preset", "pendulum", "--set",
                                         "network.actor_layers=[1000000000000000]", "--run-dir", "fresh"],
         ["pendulum.yaml with --set network.actor_layers: network: the networks do not fit in memory "
          "(actor_layers [1000000000000000]"]),
    # Weights of a few GB, a batch's activations of 40 TB: the process was killed mid-update, without a word.
    Case("a batch's activations larger than memory", ["train", "--preset", "pendulum", "--set",
                                                      "network.actor_layers=[100000000]", "--set",
                                                      "agent.batch_size=100000", "--run-dir", "fresh"],
         ["pendulum.yaml with --set network.actor_layers, --set agent.batch_size: network: the networks do not fit "
          "in memory (actor_layers [100000000], critic_layers [128, 128], units 64, batch_size 100000: at least "]),
    # Only the recurrent batch's rows too many: the --set that gave them was not named.
    Case("a recurrent batch's rows larger than memory", ["train", "--preset", "pendulum-novel", "--set",
                                                         "replay.sequence_length=2000000", "--set",
                                                         "replay.size=3000000", "--run-dir", "fresh"],
         ["pendulum-novel.yaml with --set replay.sequence_length: network: the networks do not fit in memory "
          "(actor_layers [128], critic_layers [128, 128], units 64, batch_size 32, sequence_length 2000000: at "
          "least "]),
    # Both given, the option won whatever the order, without a word.
    Case("--seed against --set train.seed", ["train", "--preset", "pendulum", "--set", "train.seed=3", "--seed", "4"],
         ["--seed 4 and --set train.seed=3 disagree; give one of them"]),
    Case("--seed against a --set train.seed of false", ["train", "--preset", "pendulum", "--set", "train.seed=false",
                                                        "--seed", "0"],
         ["--seed 0 and --set train.seed=false disagree; give one of them"]),  # Python: False == 0
    Case("--steps against --set train.steps", ["train", "--preset", "pendulum", "--steps", "10", "--set",
                                               "train.steps=30"],
         ["--steps 10 and --set train.steps=30 disagree; give one of them"]),
    Case("--seed 2**32", ["train", "--preset", "pendulum", "--seed", "4294967296"],
         ["--seed: 4294967296 must be in [0, 2**32)"]),
    Case("train.seed 2**32", ["train", "--preset", "pendulum", "--set", "train.seed=4294967296"],
         ["train.seed: 4294967296 must be in [0, 2**32)"]),
    Case("--run-dir is a file", ["train", "--preset", "pendulum", "--steps", "10", "--run-dir", "taken"],
         ["--run-dir taken: exists and is not a folder"], files={"taken": "my notes\n"}),
    Case("--run-dir a link to nothing", ["train", "--preset", "pendulum", "--steps", "10", "--run-dir", "link"],
         ["--run-dir link: is a symbolic link to /", "/nowhere, which does not exist"],
         files={"link": Symlink("nowhere")}),
    Case("--run-dir a link in a loop", ["train", "--preset", "pendulum", "--steps", "10", "--run-dir", "loop"],
         ["--run-dir loop: is a symbolic link that leads back to itself"], files={"loop": Symlink("loop")}),
    Case("--run-dir inside a file", ["train", "--preset", "pendulum", "--steps", "10", "--run-dir", "taken/run"],
         ["--run-dir taken/run: cannot create it (Not a directory)"], files={"taken": "my notes\n"}),
    Case("--run-dir name too long", ["train", "--preset", "pendulum", "--steps", "10", "--run-dir", "r" * 300],
         ["--run-dir rrrr", "File name too long"]),
    Case("--run-dir holding a run", ["train", "--preset", "pendulum", "--steps", "10", "--run-dir", "old"],
         ["--run-dir old: already holds a run (checkpoint.h5)", "--resume old", "--force"],
         files={"old/checkpoint.h5": b"\x89HDF\r\n\x1a\nprecious", "old/metrics.csv": "env_steps,episodes\n1,0\n"}),
    Case("--run-dir with a space holding a run", ["train", "--preset", "pendulum", "--steps", "10", "--run-dir",
                                                  "my run"],
         ["--run-dir my run: already holds a run (checkpoint.h5); use --resume 'my run' to continue"],
         files={"my run/checkpoint.h5": b"\x89HDF\r\n\x1a\nprecious"}),
    Case("evaluate with no checkpoint argument", ["evaluate"], ["Missing argument 'artifact'"]),
    Case("evaluate --episodes not a number", ["evaluate", "x.h5", "--episodes", "many"], ["'--episodes'"]),
    # --- checkpoints (rdpg evaluate)
    Case("checkpoint missing", ["evaluate", "missing.h5"], ["missing.h5: not found"]),
    Case("folder with no checkpoint", ["evaluate", "empty"], ["empty: a folder with no checkpoint.h5"],
         files={"empty/notes.txt": "x"}),
    Case("run folder with only best.h5", ["evaluate", "run"],
         ["run: a folder with no checkpoint.h5 (and not a SavedModel); its best.h5 holds the best evaluated "
          "policy: rdpg evaluate run/best.h5"], files={"run/best.h5": "x"}),
    Case("checkpoint not HDF5", ["evaluate", "ckpt.h5"], ["ckpt.h5: not an HDF5 file"],
         files={"ckpt.h5": "this is text\n" * 100}),
    Case("--episodes 0", ["evaluate", "ckpt.h5", "--episodes", "0"], ["--episodes: 0 must be > 0"],
         checkpoint=lambda f: None),
    Case("--episodes past int64", ["evaluate", "ckpt.h5", "--episodes", "999999999999999999999"],
         ["--episodes: 999999999999999999999 is too large"], checkpoint=lambda f: None),
    Case("evaluate an empty path", ["evaluate", ""], ["Invalid value for 'artifact': empty; give a path"]),
    Case("export an empty path", ["export", ""], ["Invalid value for 'checkpoint': empty; give a path"]),
    Case("plot an empty path", ["plot", "runs", ""], ["Invalid value for 'run_dirs': empty; give a path"]),
    Case("evaluate --seed 2**32", ["evaluate", "ckpt.h5", "--seed", "4294967296"],
         ["--seed: 4294967296 must be in [0, 2**32)"], checkpoint=lambda f: None),
    Case("HDF5 but not an rdpg checkpoint", ["evaluate", "ckpt.h5"], ["ckpt.h5: an HDF5 file, but not an rdpg"],
         checkpoint=set_attr("format", "something-else")),
    Case("truncated checkpoint", ["evaluate", "ckpt.h5"], ["ckpt.h5: truncated or damaged HDF5 file"],
         checkpoint=truncate),
    Case("newer format_version", ["evaluate", "ckpt.h5"],
         ["ckpt.h5: checkpoint format_version 2 is newer than this rdpg supports (1); upgrade rdpg"],
         checkpoint=set_attr("format_version", 2)),
    Case("weights of the wrong shape", ["evaluate", "ckpt.h5"],
         ["ckpt.h5: 'actor' array 0 has shape (3, 17), the config's networks need (3, 16)"],
         checkpoint=replace_dataset("weights/actor/0000", data=np.zeros((3, 17), np.float32))),
    Case("stored config does not match the weights", ["evaluate", "ckpt.h5"],
         ["ckpt.h5: 'actor' array 0 has shape (3, 16), the config's networks need (3, 32)"],
         checkpoint=change_stored_config(actor_layers=[32])),
    Case("dataset of an absurd shape", ["evaluate", "ckpt.h5"],
         ["ckpt.h5: damaged checkpoint: 'weights/actor/0000'", "refused unread"],
         checkpoint=replace_dataset("weights/actor/0000", shape=(20_000, 10_000), dtype="f4", chunks=(1, 1000))),
    Case("missing attribute", ["evaluate", "ckpt.h5"],
         ["ckpt.h5: damaged checkpoint: attribute 'action_dim' is missing"], checkpoint=delete_attr("action_dim")),
    Case("checkpoint of another environment", ["evaluate", "ckpt.h5"],
         ["ckpt.h5: its policy takes 3 observations and gives 1 action, but MountainCarContinuous-v0 has 2 "
          "observations and 1 action"], checkpoint=another_env("MountainCarContinuous-v0"), fresh=True),
    Case("export of a checkpoint of another environment", ["export", "ckpt.h5", "--format", "keras", "--output",
                                                           "p.keras"],
         ["ckpt.h5: its policy takes 3 observations and gives 1 action, but MountainCarContinuous-v0 has 2 "
          "observations and 1 action"], checkpoint=another_env("MountainCarContinuous-v0"), fresh=True),
    # --- evaluate --video: refused before any episode runs
    Case("video folder is a file", ["evaluate", "ckpt.h5", *FOREVER, "--video", "notes/v.gif"],
         ["--video notes/v.gif: notes is not a folder"], files={"notes": "mine\n"}, checkpoint=unchanged),
    Case("plot folder is a file", ["plot", ".", "-o", "notes/c.png"], ["--output notes/c.png: notes is not a folder"],
         files={"notes": "mine\n"}),
    Case("checkpoint not readable (mode 000)", ["evaluate", "locked.h5"],
         ["locked.h5: cannot read it (Permission denied)"], files={"locked.h5": "x"},
         marks=(pytest.mark.skipif(IS_ROOT, reason="root reads files whatever their mode"),)),
    Case("video file exists", ["evaluate", "ckpt.h5", *FOREVER, "--video", "v.gif"],
         ["--video v.gif: already exists; use --force to replace it"], files={"v.gif": "mine"}, checkpoint=unchanged),
    Case("video path is a folder", ["evaluate", "ckpt.h5", *FOREVER, "--video", "v.gif", "--force"],
         ["--video v.gif: is a folder"], files={"v.gif/keep": "mine"}, checkpoint=unchanged),
    # --- --verbose and --quiet together: refused, whichever comes first, in every command that takes both
    Case("--verbose with --quiet", ["train", "--preset", "pendulum", "--verbose", "--quiet"],
         ["'--quiet' / '-q': not with --verbose: one asks for more detail, the other for less"]),
    Case("-q with -v", ["evaluate", "ckpt.h5", "-q", "-v"], ["'--verbose' / '-v': not with --quiet"]),
    Case("--quiet with --verbose in export", ["export", "--quiet", "--verbose"], ["not with --quiet"]),
    Case("--verbose with --quiet in plot", ["plot", "-v", "-q"], ["not with --verbose"]),
    Case("presets -v -q", ["presets", "-v", "-q"], ["not with --verbose"]),
]


def snapshot(folder: Path) -> dict[str, tuple]:
    """Every file and folder under ``folder``: kind, mode, size, mtime and content hash."""
    out = {}
    for path in sorted(folder.rglob("*")):
        info = path.lstat()
        rel = str(path.relative_to(folder))
        if path.is_symlink():
            out[rel] = ("link", os.readlink(path), info.st_mtime_ns)
        elif path.is_dir():
            out[rel] = ("dir", info.st_mode, info.st_mtime_ns)
        else:
            try:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
            except PermissionError:
                digest = None
            out[rel] = ("file", info.st_mode, info.st_size, info.st_mtime_ns, digest)
    return out


def prepare(case: Case, folder: Path, tiny_checkpoint: Path | None) -> None:
    for name, content in case.files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Symlink):
            path.symlink_to(content.target)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    if case.id.startswith("preset not readable"):
        (folder / "locked.yaml").chmod(0)
    if case.id.startswith("checkpoint not readable"):
        (folder / "locked.h5").chmod(0)
    if case.checkpoint is not None:
        target = folder / "ckpt.h5"
        if case.checkpoint is truncate:
            data = tiny_checkpoint.read_bytes()
            target.write_bytes(data[: len(data) // 2])
        else:
            shutil.copy(tiny_checkpoint, target)
            with h5py.File(target, "r+") as f:
                case.checkpoint(f)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=c.marks) for c in CASES])
def test_bad_input_is_one_line_exit_2_and_touches_nothing(case: Case, tmp_path: Path, request):
    checkpoint = request.getfixturevalue("tiny_checkpoint") if case.checkpoint is not None else None
    prepare(case, tmp_path, checkpoint)
    before = snapshot(tmp_path)

    result = rdpg(*case.args, cwd=tmp_path, fresh=case.fresh)

    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert result.returncode == 2, output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].strip(), f"stderr is not one line: {result.stderr!r}"
    line = lines[0]
    assert line.startswith("error: "), line
    for fragment in case.fragments:
        assert fragment in line, f"{fragment!r} not in {line!r}"
    assert result.stdout == "", result.stdout
    assert snapshot(tmp_path) == before, "bad input changed or added files"


def _now_shows_two_of_three(f: h5py.File, config: dict) -> None:
    config["env"]["observation_indices"] = [0, 1]


def _critic_had_four(f: h5py.File, config: dict) -> None:
    config["network"]["critic_input"] = "full_observation"
    f.attrs["full_observation_dim"] = 4


@pytest.mark.parametrize("change, error", [
    # A custom environment whose spaces changed since the run began: the same message as evaluate's.
    pytest.param(_now_shows_two_of_three, "run: its policy takes 3 observations and gives 1 action, but Pendulum-v1 "
                 "has 2 observations and 1 action", id="policy"),
    # The policy's components still fit, the whole observation a critic reads (network.critic_input) does not.
    pytest.param(_critic_had_four, "run: its critic reads the whole observation of 4 components, but Pendulum-v1 now "
                 "has 3 (the environment changed since it was trained)", id="whole-observation-critic"),
])
def test_resuming_in_an_environment_of_other_sizes_names_them(tiny_checkpoint: Path, tmp_path: Path, change, error):
    """Named as an environment change, not as the first weight array's shape (the config's networks)."""
    (tmp_path / "run").mkdir()
    shutil.copy(tiny_checkpoint, tmp_path / "run" / "checkpoint.h5")
    with h5py.File(tmp_path / "run" / "checkpoint.h5", "r+") as f:
        config = yaml.safe_load(f.attrs["config"])
        change(f, config)
        f.attrs["config"] = yaml.safe_dump(config)
    before = snapshot(tmp_path)
    result = rdpg("train", "--resume", "run", "--steps", "600", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr == f"error: {error}\n", result.stderr
    assert snapshot(tmp_path) == before


SIZED_ENV = """
import pathlib
import gymnasium as gym
import numpy as np

class Sized(gym.Env):
    def __init__(self):
        actions = int(pathlib.Path("actions.txt").read_text())  # the environment's sizes change between sessions
        reach = pathlib.Path("reach.txt")
        high = float(reach.read_text()) if reach.exists() else 2.0  # and so may its action bounds
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (3,), np.float32)
        self.action_space = gym.spaces.Box(-high, high, (actions,), np.float32)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(3, np.float32), {}

    def step(self, action):
        return np.zeros(3, np.float32), -float(np.sum(np.square(action))), False, False, {}

gym.register("Sized-v0", entry_point="sized_envs:Sized", max_episode_steps=50)
"""


def test_resuming_after_the_environment_changed_its_action_size_or_bounds(tmp_path: Path):
    """The stored action bounds were found not to fit first ("action_bounds: 1 entries but ... has 2"): the
    message now says what changed, as rdpg evaluate's does. And an action space that shrank from [-2, 2] to
    [-1, 1] after training: `rdpg evaluate` (and export) ran the policy outside it without a word, and a resume
    named only the bounds, not where they came from."""
    (tmp_path / "sized_envs.py").write_text(SIZED_ENV)
    (tmp_path / "actions.txt").write_text("1")
    trained = rdpg(*TINY_RUN[:3], "--set", "env.id=sized_envs:Sized-v0", "--steps", "150", *TINY_RUN[5:],
                   "--run-dir", "run", "-q", cwd=tmp_path, timeout=300)
    assert trained.returncode == 0, trained.stderr
    (tmp_path / "reach.txt").write_text("1.0")
    before = snapshot(tmp_path)
    before.pop("run/.lock")  # a resume takes the lock (its process id) before it meets the environment
    for args in (["train", "--resume", "run", "--steps", "300"], ["evaluate", "run", "--episodes", "1"]):
        result = rdpg(*args, cwd=tmp_path)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.startswith("error: run") and result.stderr.count("\n") == 1, (args, result.stderr)
        assert (": its actions span [-2.0, 2.0] in dimension 0, outside the action space [-1.0, 1.0] of "
                "sized_envs:Sized-v0 (the environment changed since it was trained)\n") in result.stderr, result.stderr
    after = snapshot(tmp_path)
    after.pop("run/.lock")
    assert after == before
    (tmp_path / "reach.txt").unlink()
    (tmp_path / "actions.txt").write_text("2")
    result = rdpg("train", "--resume", "run", "--steps", "300", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr == ("error: run: its policy takes 3 observations and gives 1 action, but "
                             "sized_envs:Sized-v0 has 3 observations and 2 actions\n"), result.stderr


def test_the_catalogue_covers_issue_7():
    """Issue 7 asks for at least 30 cases; the checkpoint cases of issue 4 are among them."""
    assert len(CASES) >= 30
    assert sum(c.args[0] == "evaluate" for c in CASES) >= 10
    assert len({c.id for c in CASES}) == len(CASES)


def test_a_good_tiny_run_still_works(tiny_checkpoint: Path, tmp_path: Path):
    """The cases above fail for the reason they name, not because evaluating any checkpoint fails."""
    shutil.copy(tiny_checkpoint, tmp_path / "ckpt.h5")
    result = rdpg("evaluate", "ckpt.h5", "--episodes", "1", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert '"episodes": 1' in result.stdout


def test_verbose_shows_where_a_one_line_error_came_from(tmp_path: Path):
    """For a bug report: --verbose prints the traceback, with the exception the error was turned from, and
    ends with the same one line; the exit code stays 2."""
    (tmp_path / "bad.yaml").write_text("env: [\n")
    quiet = rdpg("train", "--preset", "bad.yaml", cwd=tmp_path)
    loud = rdpg("train", "--preset", "bad.yaml", "--verbose", cwd=tmp_path)
    assert quiet.returncode == loud.returncode == 2
    assert "Traceback" not in quiet.stderr and quiet.stderr.count("\n") == 1
    assert "Traceback" in loud.stderr and "yaml" in loud.stderr and "ConfigError" in loud.stderr
    assert loud.stderr.strip().splitlines()[-1] == quiet.stderr.strip()


# ---------------------------------------------------------------------------------------- evaluate --video


def rdpg_with(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rdpg_cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "COLUMNS": "80", "TERM": "dumb", **env})


def assert_one_error_line(result: subprocess.CompletedProcess, message: str) -> None:
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert message in result.stderr, result.stderr


def test_the_narrowest_action_range_inverted_gradients_take_trains_without_diverging(tmp_path: Path):
    """The limit keeps a wide margin: 2e-22 trained, 2e-25 turned the weights NaN at the first actor step."""
    from rdpg_cli.config import MIN_INVERTED_WIDTH

    half = MIN_INVERTED_WIDTH / 2
    result = forked_rdpg(*TINY_RUN, "--set", f"action_bounds.low=[{-half}]", "--set",
                         f"action_bounds.high=[{half}]", "--run-dir", "run", "--quiet", cwd=tmp_path, check=False)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "run" / "checkpoint.h5").is_file()


def test_mp4_without_ffmpeg_is_refused_before_any_episode(tiny_checkpoint: Path, tmp_path: Path):
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    (hidden / "imageio_ffmpeg.py").write_text("raise ImportError('hidden by the test')\n")
    path = os.pathsep.join([str(hidden), os.environ.get("PYTHONPATH", "")])
    result = rdpg_with({"PYTHONPATH": path, "PYTHONDONTWRITEBYTECODE": "1"},
                       "evaluate", str(tiny_checkpoint), *FOREVER, "--video", "v.mp4", cwd=tmp_path)
    assert_one_error_line(result, "--video v.mp4: MP4 needs ffmpeg")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hidden"]


def test_a_video_folder_it_cannot_write_in_is_refused_before_any_episode(tiny_checkpoint: Path,
                                                                         immutable_folder: Path):
    result = rdpg("evaluate", str(tiny_checkpoint), *FOREVER, "--video", "locked/v.gif",
                  cwd=immutable_folder.parent)
    assert_one_error_line(result, "--video locked/v.gif: cannot write in locked (Operation not permitted)")
    assert not list(immutable_folder.iterdir())


def test_force_replaces_an_existing_video_even_of_a_name_near_the_file_systems_limit(tiny_checkpoint: Path,
                                                                                     tmp_path: Path):
    """The temporary name was the video's own plus ``.tmp-PID``: a legal name of 250 bytes was refused as a
    folder rdpg "cannot write in"."""
    pytest.importorskip("imageio")
    name = "v" * 246 + ".gif"
    (tmp_path / name).write_text("mine")
    result = rdpg("evaluate", str(tiny_checkpoint), "--episodes", "1", "--video", name, "--force", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / name).read_bytes()[:6] == b"GIF89a"
    assert sorted(p.name for p in tmp_path.iterdir()) == [name], "temporary files left behind"


def test_a_symbolic_link_to_nothing_is_not_replaced_by_a_video_without_force(tiny_checkpoint: Path,
                                                                            tmp_path: Path):
    (tmp_path / "v.gif").symlink_to("elsewhere.gif")
    result = rdpg("evaluate", str(tiny_checkpoint), *FOREVER, "--video", "v.gif", cwd=tmp_path)
    assert_one_error_line(result, "--video v.gif: already exists; use --force to replace it")
    assert (tmp_path / "v.gif").is_symlink() and sorted(p.name for p in tmp_path.iterdir()) == ["v.gif"]


def test_a_failed_video_write_prints_nothing_after_its_error(immutable_folder: Path, monkeypatch):
    """imageio writes a GIF when its writer closes, and a writer whose close failed tries again when it is
    garbage-collected, printing 'Exception ignored in PluginV3.__del__' and a traceback after rdpg's error.
    (The CLI finds a folder it cannot write in before the episodes; this is the write itself failing.)"""
    import gc

    pytest.importorskip("imageio")
    from rdpg_cli.errors import ConfigError
    from rdpg_cli.video import VideoWriter

    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    writer = VideoWriter(immutable_folder / "v.gif")
    for _ in range(3):
        writer.append(np.zeros((16, 16, 3), np.uint8))
    with pytest.raises(ConfigError, match=r"locked/v\.gif: cannot write it \(Operation not permitted\)"):
        writer.finish()
    gc.collect()
    assert unraisable == []
