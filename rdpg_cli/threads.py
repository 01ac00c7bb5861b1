"""TensorFlow's thread pools for rdpg's graphs, chosen by measurement (``bench/roofline.py``).

An update is many small ops (matmuls of a few hundred rows, elementwise work), with independent branches:
twin critics, target networks, actor and critic encoders. Running each op on one thread and as many ops at
once as there are cores beat TensorFlow's default (every op split over every core) on the 2-core
development machine: the feed-forward TD3 update 3.5 vs 4.1 ms, the LSTM-128 update 60 vs 82 ms
(2026-11-25). One thread per op also makes each op's arithmetic independent of the core count.
"""

from __future__ import annotations

import os


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity, which containers narrow), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def default_thread_pools() -> None:
    """Set rdpg's thread-pool sizes and kernels unless the user set them: TensorFlow reads these variables
    when it is imported or creates its runtime, so this must run before either.

    oneDNN's kernels are asked for explicitly: TensorFlow turns them on by itself only on CPUs with AVX-512
    VNNI, BF16 or AMX. On one without (an AVX2 AMD EPYC) its default Eigen kernels round differently, so the
    same seed trained to other numbers in ``rdpg train --verbose``, the benchmarks and the tests than in a
    plain ``rdpg train``; oneDNN was also as fast or faster there (187-195 against 170-183 env steps/s,
    ``bench/throughput.py --only rdpg --quick``, 2026-11-26)."""
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", str(usable_cores()))
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
