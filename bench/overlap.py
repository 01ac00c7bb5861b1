"""Would it pay to run each update in a second thread while the main thread steps the environment?

    python bench/overlap.py                 # 4 rounds of 1000 env steps each way
    python bench/overlap.py --rounds 6 --steps 2000

The training loop is sequential: act, step the environment, store, sample, update (bench/throughput.py's
settings: Pendulum-v1, [256, 256], batch 256, TD3 options). TensorFlow runs the update's graph outside the
GIL, so in principle the ~0.35 ms of Python per env step (acting, stepping, sampling, packing the batch) could
hide behind the ~2.5 ms update if the update ran in a worker thread and acting used the actor of one update
before. One trainer, past its warm-up, alternates rounds of the real loop (``Trainer._env_step`` then
``Trainer._learn``) with rounds of that overlapped variant, so both see the same load. The last line gives
the median env steps/s of each and their ratio (> 1: overlapping pays). The real loop now runs each
critic-only step in one call with the next actor step (``Trainer.pending_updates``) while the overlapped
variant makes one call per update; the README's figure (0.96x) predates that change. Both move the target
networks on TD3's delayed steps only, and both kinds of step are traced before the first timed round.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _common import QUIET_RUN_SETS, THROUGHPUT_SETS, header, make_config, median, quiet_tensorflow

quiet_tensorflow()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=1000, help="env steps per round")
    args = parser.parse_args()
    header("overlap: update in a worker thread vs the sequential loop")

    from rdpg_cli.trainer import Reporter, Trainer

    config, spec = make_config(THROUGHPUT_SETS, {**QUIET_RUN_SETS, "train.steps": 10**7})
    agent_cfg = config.agent
    with tempfile.TemporaryDirectory(prefix="rdpg-bench-") as run_dir:
        trainer = Trainer(config, spec, Path(run_dir), Reporter())
        trainer._reset_episode()
        for _ in range(agent_cfg.warmup_steps + 300):  # past the warm-up, graphs traced
            trainer._env_step()
            trainer._learn()
        trainer.run_pending_updates()
        for delayed in (True, False):  # the overlapped variant's one-step calls, traced outside the timing
            trainer.agent.train_step(trainer.replay.sample(trainer.rng, agent_cfg.batch_size), delayed, delayed)

        def sequential(steps: int) -> float:
            start = time.perf_counter()
            for _ in range(steps):
                trainer._env_step()
                trainer._learn()
            trainer.run_pending_updates()  # a critic-only step held back for the next call runs now
            return steps / (time.perf_counter() - start)

        worker = ThreadPoolExecutor(1)

        def overlapped(steps: int) -> float:
            start, pending = time.perf_counter(), None
            for _ in range(steps):
                trainer._env_step()  # acts with the actor the previous update handed back
                batch = trainer.replay.sample(trainer.rng, agent_cfg.batch_size)
                delayed = trainer.critic_updates % agent_cfg.policy_delay == 0  # the actor and the targets move
                if pending is not None:
                    pending.result()
                pending = worker.submit(trainer.agent.train_step, batch, delayed, delayed)
                trainer.critic_updates += 1
            pending.result()
            return steps / (time.perf_counter() - start)

        plain, threaded = [], []
        for i in range(args.rounds):
            plain.append(sequential(args.steps))
            threaded.append(overlapped(args.steps))
            print(f"round {i}: sequential {plain[-1]:.0f}, overlapped {threaded[-1]:.0f} env steps/s", flush=True)
        worker.shutdown()
        trainer.close()
    print(f"overlapped / sequential: {median(threaded) / median(plain):.2f}x (overlapped {median(threaded):.0f}, "
          f"sequential {median(plain):.0f} env steps/s, median of {args.rounds})")


if __name__ == "__main__":
    main()
