"""Env steps/s of our ALFWorld env vs ALFWorld's own ``AlfredTWEnv`` on the same generated games.

Both sides play uniformly random admissible commands (one RNG seed), resetting on episode end;
resets and game loads are included in the timing. The reference is ``AlfredTWEnv(config).
init_env(batch_size=1)`` (textworld's gym env, which ALFWorld runs in a worker process); ours is
``alfworld/<Task>-v0`` with token observations plus the four reward primitives in a
``ShapedEnv``, measured three times: on textworld untouched (``engine="textworld",
fast_text=False``: the wrapper's overhead, target ratio >= 0.9), on textworld with the
template-parsing caches of ``rewardlab.envs.alfworld.speedups``, and on the native simulator
(``engine="native"``, the default; target >= 50x raw). Blocks alternate (raw, ours, ours fast,
native, raw, ...) so machine load affects all alike; the native side plays ``--native-factor``
times more steps per block (it is that much faster), and the machine's load average is printed.

    python benchmarks/alfworld_steps.py [--task PickAndPlace-v0] [--steps 300] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import rewardlab
from rewardlab.envs.alfworld import speedups
from rewardlab.envs.alfworld.env import ENV_TASKS
from rewardlab.envs.alfworld.generate import GenSettings, ensure_corpus, import_alfworld

REWARD = ["env", "alfworld/success", "alfworld/subgoal_progress", "alfworld/invalid_command", "step_penalty"]


def raw_env(corpus_train: str, max_steps: int, num_games: int):
    import_alfworld()
    from alfworld.agents.environment.alfred_tw_env import AlfredTWEnv

    config = {
        "env": {"goal_desc_human_anns_prob": 0.0, "task_types": [1, 2, 3, 4, 5, 6], "domain_randomization": False,
                "expert_type": "handcoded"},
        "dataset": {"data_path": corpus_train, "num_train_games": num_games},
        "general": {"training_method": "dqn"},
        "rl": {"training": {"max_nb_steps_per_episode": max_steps}},
    }
    return AlfredTWEnv(config, train_eval="train").init_env(batch_size=1)


def run_raw(env, steps: int, rng: np.random.Generator) -> float:
    env.seed(int(rng.integers(1 << 30)))
    _, infos = env.reset()
    t = time.perf_counter()
    for _ in range(steps):
        cmd = infos["admissible_commands"][0][int(rng.integers(len(infos["admissible_commands"][0])))]
        _, _, dones, infos = env.step([cmd])
        if dones[0]:
            _, infos = env.reset()
    return steps / (time.perf_counter() - t)


def run_ours(env, steps: int, rng: np.random.Generator) -> float:
    obs, _ = env.reset(seed=int(rng.integers(1 << 30)))
    t = time.perf_counter()
    for _ in range(steps):
        valid = np.flatnonzero(obs["action_mask"])
        obs, _, term, trunc, _ = env.step(int(valid[int(rng.integers(len(valid)))]))
        if term or trunc:
            obs, _ = env.reset()
    return steps / (time.perf_counter() - t)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="PickAndPlace-v0", choices=[t for t in ENV_TASKS if t != "All-v0"])
    p.add_argument("--steps", type=int, default=300, help="env steps per block")
    p.add_argument("--repeats", type=int, default=3, help="blocks per side")
    p.add_argument("--games", type=int, default=4)
    p.add_argument("--max-steps", type=int, default=30)
    p.add_argument("--native-factor", type=int, default=20, help="native steps per block = factor x --steps")
    a = p.parse_args()
    kwargs = dict(games_per_type=a.games, heldout_per_type=0)
    settings = GenSettings(task_types=ENV_TASKS[a.task], **kwargs)
    corpus, _ = ensure_corpus(settings)
    speedups.uninstall()
    raw = raw_env(os.path.join(corpus, "train"), a.max_steps, a.games)
    ours = rewardlab.make(f"alfworld/{a.task}", reward=REWARD, max_steps=a.max_steps, engine="textworld",
                          fast_text=False, **kwargs)
    fast = rewardlab.make(f"alfworld/{a.task}", reward=REWARD, max_steps=a.max_steps, engine="textworld", **kwargs)
    native = rewardlab.make(f"alfworld/{a.task}", reward=REWARD, max_steps=a.max_steps, engine="native", **kwargs)
    load0 = os.getloadavg()[0]
    # warm-up: every game loaded once on every side (ALFWorld reloads a game at every reset)
    speedups.uninstall(keep_cache=True)
    run_raw(raw, 2 * a.max_steps, np.random.default_rng(0))
    run_ours(ours, 2 * a.max_steps * a.games, np.random.default_rng(0))
    speedups.install()
    run_ours(fast, 2 * a.max_steps * a.games, np.random.default_rng(0))
    run_ours(native, 2 * a.max_steps * a.games, np.random.default_rng(0))
    r_sps, o_sps, f_sps, n_sps = [], [], [], []
    for k in range(a.repeats):
        speedups.uninstall(keep_cache=True)
        r_sps.append(run_raw(raw, a.steps, np.random.default_rng(100 + k)))
        o_sps.append(run_ours(ours, a.steps, np.random.default_rng(100 + k)))
        speedups.install()
        f_sps.append(run_ours(fast, a.steps, np.random.default_rng(100 + k)))
        n_sps.append(run_ours(native, a.native_factor * a.steps, np.random.default_rng(100 + k)))
        print(f"block {k}: raw AlfredTWEnv {r_sps[-1]:7.1f} steps/s   ours {o_sps[-1]:7.1f}   "
              f"ours fast_text {f_sps[-1]:7.1f}   ours native {n_sps[-1]:8.1f}", flush=True)
    r, o, f, n = (float(np.median(x)) for x in (r_sps, o_sps, f_sps, n_sps))
    print(f"\n{a.task}, {a.games} games, random admissible commands, {a.repeats} x {a.steps} steps per side")
    print(f"raw AlfredTWEnv            : {r:7.1f} steps/s (median)")
    print(f"ours (+ 5 terms)           : {o:7.1f} steps/s (median)")
    print(f"ours + fast_text           : {f:7.1f} steps/s (median)")
    print(f"ours native (default)      : {n:7.1f} steps/s (median)")
    print(f"ratio ours/raw             : {o / r:.2f} (target >= 0.9)")
    print(f"ratio fast_text/raw        : {f / r:.2f}")
    print(f"ratio native/raw           : {n / r:.1f} (target >= 50)")
    print(f"load average (1 min)       : {load0:.2f} at start, {os.getloadavg()[0]:.2f} at end, "
          f"{os.cpu_count()} cores")
    raw.close()
    ours.close()
    fast.close()
    native.close()


if __name__ == "__main__":
    main()
