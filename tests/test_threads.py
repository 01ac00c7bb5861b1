"""TensorFlow's thread pools: rdpg's defaults, and the user's own settings left alone."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from rdpg_cli.threads import default_thread_pools, usable_cores


def test_defaults_are_one_thread_per_op_and_one_op_per_core(monkeypatch):
    monkeypatch.delenv("TF_NUM_INTRAOP_THREADS", raising=False)
    monkeypatch.delenv("TF_NUM_INTEROP_THREADS", raising=False)
    default_thread_pools()
    assert os.environ["TF_NUM_INTRAOP_THREADS"] == "1"
    assert os.environ["TF_NUM_INTEROP_THREADS"] == str(usable_cores())


def test_onednn_kernels_are_asked_for_whatever_the_cpu(monkeypatch):
    """TensorFlow enables them by itself only on AVX-512 VNNI/BF16/AMX CPUs: elsewhere `--verbose`, the
    benchmarks and the tests computed with other kernels, so other numbers, than a plain `rdpg train`."""
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    default_thread_pools()
    assert os.environ["TF_ENABLE_ONEDNN_OPTS"] == "1"


@pytest.mark.parametrize("name", ["TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "TF_ENABLE_ONEDNN_OPTS"])
def test_a_users_setting_wins(monkeypatch, name):
    monkeypatch.setenv(name, "7")
    default_thread_pools()
    assert os.environ[name] == "7"


def test_usable_cores_counts_this_process_affinity():
    cores = usable_cores()
    assert 1 <= cores <= (os.cpu_count() or cores)
    if hasattr(os, "sched_getaffinity"):
        assert cores == len(os.sched_getaffinity(0))


@pytest.mark.parametrize("verbose", [False, True])
def test_the_cli_sizes_the_pools_before_tensorflow_starts(verbose):
    code = (f"import os, sys; from rdpg_cli.cli import load_tensorflow; load_tensorflow({verbose}); "
            "import tensorflow as tf; tf.constant(1.0); "
            "print(os.environ['TF_NUM_INTRAOP_THREADS'], os.environ['TF_NUM_INTEROP_THREADS'], "
            "os.environ.get('TF_ENABLE_ONEDNN_OPTS'))")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_NUM_", "TF_ENABLE_ONEDNN"))}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", str(usable_cores()), "1"]  # --verbose too: it trained to other numbers


@pytest.mark.parametrize("verbose", [False, True])
def test_tensorflow_starts_without_matplotlib_and_it_still_imports_after(verbose):
    """Keras imports matplotlib, when installed, for helpers rdpg never calls: about 0.7 s of every start."""
    pytest.importorskip("matplotlib")
    code = (f"import sys; from rdpg_cli.cli import load_tensorflow; load_tensorflow({verbose}); "
            "import tensorflow as tf; tf.constant(1.0); print(any(m.startswith('matplotlib') for m in sys.modules)); "
            "import matplotlib.pyplot as plt; from matplotlib import patches; print(callable(plt.figure))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]
