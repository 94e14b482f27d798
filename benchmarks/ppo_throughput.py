"""Our PPO vs Stable-Baselines3 PPO: throughput (SPS) and sample efficiency, side by side.

Same hyperparameters on both sides: 8 envs, 128 steps per env, 4 epochs, 4 minibatches
(256 samples), MLP 64x64 tanh for actor and critic (observations flattened), Adam 2.5e-4
linearly annealed, clip 0.2, ent 0.01, vf 0.5, GAE λ 0.95, γ 0.99, grad-norm 0.5.

- CartPole-v1: ours on ``rewardlab.make_vec("CartPole-v1", 8, reward=["env"])``, SB3 on
  ``make_vec_env("CartPole-v1", n_envs=8)``;
- MiniHack Room-5x5 (one-hot ``chars_crop``): ours on
  ``rewardlab.make_vec("minihack/Room-5x5", 8, reward=["env"])``, SB3 on
  ``make_vec_env(lambda: rewardlab.make("minihack/Room-5x5"), n_envs=8)``.

Vectorisation: ours on ``vectorization_mode`` ``sync`` (default), ``async`` (Gymnasium's
``AsyncVectorEnv``, a process per env) or ``workers`` (``WorkerVectorEnv``, a process per usable
core, each stepping a ``SyncVectorEnv`` of its share); SB3 on ``dummy`` (``DummyVecEnv``, default)
or ``subproc`` (``SubprocVecEnv``, a process per env). ``--ours-vec``/``--sb3-vec`` choose one each;
``workers-inline`` is ``workers`` with the first group stepped by the main process.
``--best`` measures every combination's side in the same interleaved rounds and reports each side's
best and the ratio of the two bests (throughput only).

Throughput rounds rotate which configuration runs first; the table reports medians over rounds
and the ratio of the medians. ``env-only`` is each side's env stack stepped with random
actions (an upper bound on any agent's SPS). Sample efficiency: steps until the
deterministic evaluation reaches the target (CartPole: mean return >= 475 over 10 episodes;
Room-5x5: success >= 0.8 over 50 episodes), evaluated every ``--eval-every`` steps.

    python benchmarks/ppo_throughput.py                          # full run
    python benchmarks/ppo_throughput.py --rounds 1 --tp-steps 8192 --seeds 0   # quick look
    python benchmarks/ppo_throughput.py --envs minihack --seeds "" --best        # each side on its best vectorisation
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

import rewardlab
from rewardlab.agents.ppo import make_ppo
from rewardlab.experiment.evaluate import evaluate

GAMMA = 0.99
LR = 2.5e-4
N_ENVS = 8
OURS_VEC = ("sync", "async", "workers", "workers-inline")
SB3_VEC = ("dummy", "subproc")


@dataclass(frozen=True)
class Task:
    key: str
    env_id: str
    target: str  # "return" or "success"
    threshold: float
    eval_episodes: int
    eval_envs: int
    eval_every: int  # default evaluation interval (steps) for sample efficiency
    tp_steps: int  # default steps per throughput measurement
    budget: int  # default sample-efficiency budget (steps)


TASKS = {
    "cartpole": Task("cartpole", "CartPole-v1", "return", 475.0, 10, 10, 4096, 65_536, 300_000),
    "minihack": Task("minihack", "minihack/Room-5x5", "success", 0.8, 50, 10, 2048, 16_384, 100_000),
}


# -- the two agents ------------------------------------------------------------------------
def ours_env(task: Task, vec: str = "sync") -> Any:
    """``workers-inline``: ``workers`` with the first group stepped by the main process."""
    mode, _, variant = vec.partition("-")
    vector_kwargs = {"inline": variant == "inline"} if mode == "workers" else None
    return rewardlab.make_vec(task.env_id, N_ENVS, reward=["env"], gamma=GAMMA, vectorization_mode=mode,
                              vector_kwargs=vector_kwargs)


def make_ours(task: Task, seed: int, vec: str = "sync") -> Any:
    return make_ppo(ours_env(task, vec), gamma=GAMMA, seed=seed, params={"encoder": "mlp"})


def _make_minihack(env_id: str) -> Any:  # module level: SubprocVecEnv's workers unpickle it
    return rewardlab.make(env_id)


def sb3_env(task: Task, seed: int, vec: str = "dummy") -> Any:
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    cls = {"dummy": DummyVecEnv, "subproc": SubprocVecEnv}[vec]
    if task.env_id.startswith("minihack/"):
        return make_vec_env(_make_minihack, n_envs=N_ENVS, seed=seed, vec_env_cls=cls,
                            env_kwargs={"env_id": task.env_id})
    return make_vec_env(task.env_id, n_envs=N_ENVS, seed=seed, vec_env_cls=cls)


def make_sb3(task: Task, seed: int, vec: str = "dummy") -> Any:
    from stable_baselines3 import PPO

    env = sb3_env(task, seed, vec)
    return PPO(
        "MlpPolicy", env, learning_rate=lambda progress: LR * progress, n_steps=128, batch_size=128 * N_ENVS // 4,
        n_epochs=4, gamma=GAMMA, gae_lambda=0.95, clip_range=0.2, ent_coef=0.01, vf_coef=0.5, max_grad_norm=0.5,
        policy_kwargs={"net_arch": {"pi": [64, 64], "vf": [64, 64]}}, device="cpu", seed=seed, verbose=0,
    )


def learn_ours(agent: Any, steps: int, on_iter: Callable[[int], bool] | None = None) -> None:
    class CB:
        def on_iteration(self, n: int, metrics: dict[str, float]) -> bool:
            return True if on_iter is None else on_iter(n)

    agent.learn(agent.num_timesteps + steps, CB())


def learn_sb3(model: Any, steps: int, on_iter: Callable[[int], bool] | None = None) -> None:
    from stable_baselines3.common.callbacks import BaseCallback

    class CB(BaseCallback):
        """Calls ``on_iter`` after each update (= at the next rollout's start, like ours)."""

        stop = False

        def _on_rollout_start(self) -> None:
            if on_iter is not None and self.model.num_timesteps > 0:
                self.stop = not on_iter(self.model.num_timesteps)

        def _on_step(self) -> bool:
            return not self.stop

    model.learn(steps, callback=CB(), reset_num_timesteps=False)


SIDES: dict[str, tuple[Callable[[Task, int], Any], Callable[..., None]]] = {
    "ours": (make_ours, learn_ours),
    "sb3": (make_sb3, learn_sb3),
}


# -- throughput ----------------------------------------------------------------------------
def env_only_sps(task: Task, side: str, steps: int, vec: str | None = None) -> float:
    """Random actions through the env stack each side trains on."""
    if side == "ours":
        venv = ours_env(task, vec or "sync")
        try:
            venv.reset(seed=0)
            venv.action_space.seed(0)
            t = time.perf_counter()
            for _ in range(steps // N_ENVS):
                venv.step(venv.action_space.sample())
                venv.pop_episodes()
            return steps / (time.perf_counter() - t)
        finally:
            venv.close()
    env = sb3_env(task, 0, vec or "dummy")
    try:
        env.reset()
        t = time.perf_counter()
        for _ in range(steps // N_ENVS):
            env.step(np.array([env.action_space.sample() for _ in range(N_ENVS)]))
        return steps / (time.perf_counter() - t)
    finally:
        env.close()


class _EnvTimer:
    """Wraps an env object's ``step`` to add up the time spent inside it."""

    def __init__(self, env: Any):
        self.total, self._step = 0.0, env.step
        env.step = self  # instance attribute shadows the method

    def __call__(self, actions: Any) -> Any:
        t = time.perf_counter()
        out = self._step(actions)
        self.total += time.perf_counter() - t
        return out


def throughput(task: Task, steps: int, rounds: int, vecs: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """Median SPS per side on its best vectorisation (of ``vecs[side]``, all measured in the same rounds).

    ``agent_us`` = median microseconds per step spent outside env.step; ``configs`` has every
    ``(side, vec)`` measured; ``vec`` names each side's best.
    """
    vecs = vecs or {"ours": ["sync"], "sb3": ["dummy"]}
    configs = [(side, vec) for side in ("ours", "sb3") for vec in vecs[side]]
    sps: dict[tuple[str, str], list[float]] = {c: [] for c in configs}
    agent_us: dict[tuple[str, str], list[float]] = {c: [] for c in configs}
    env_frac: dict[tuple[str, str], list[float]] = {c: [] for c in configs}
    for r in range(rounds):
        k = r % len(configs)
        for side, vec in configs[k:] + configs[:k]:
            make, learn = SIDES[side]
            agent = make(task, r, vec)
            try:
                learn(agent, 2 * 128 * N_ENVS)  # warm-up: lazy init, first allocations
                timer = _EnvTimer(agent.venv if side == "ours" else agent.env)
                t = time.perf_counter()
                learn(agent, steps)
                elapsed = time.perf_counter() - t
            finally:
                (agent.venv if side == "ours" else agent.env).close()
            sps[side, vec].append(steps / elapsed)
            agent_us[side, vec].append((elapsed - timer.total) / steps * 1e6)
            env_frac[side, vec].append(timer.total / elapsed)
            print(f"  [{task.key}] round {r} {side}/{vec}: {sps[side, vec][-1]:.0f} SPS, env.step "
                  f"{timer.total / elapsed:.0%} of the time, load {load()}", flush=True)
    per = {c: {"sps": statistics.median(sps[c]), "agent_us": statistics.median(agent_us[c]),
               "env_frac": statistics.median(env_frac[c]), "all": sps[c],
               "env_only": env_only_sps(task, c[0], min(steps, 20_000), c[1])} for c in configs}
    best = {side: max((c for c in configs if c[0] == side), key=lambda c: per[c]["sps"]) for side in ("ours", "sb3")}
    med = {side: per[best[side]]["sps"] for side in best}
    return {"sps": med, "ratio": med["ours"] / med["sb3"], "vec": {s: best[s][1] for s in best},
            "env_only": {s: per[best[s]]["env_only"] for s in best},
            "agent_us": {s: per[best[s]]["agent_us"] for s in best}, "configs": per}


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


# -- sample efficiency ---------------------------------------------------------------------
def steps_to_target(task: Task, side: str, seed: int, budget: int, eval_every: int,
                    vec: str | None = None) -> tuple[int | None, float]:
    """Steps until the evaluation reaches the target (None if not within ``budget``)."""
    make, learn = SIDES[side]
    agent = make(task, seed, vec or ("sync" if side == "ours" else "dummy"))
    policy = agent.act if side == "ours" else (lambda obs, det: agent.predict(obs, deterministic=det)[0])
    eval_env = rewardlab.make_vec(task.env_id, task.eval_envs)
    state: dict[str, Any] = {"next": eval_every, "hit": None, "last": float("nan")}

    def on_iter(n: int) -> bool:
        if n < state["next"]:
            return True
        state["next"] += eval_every
        with torch.inference_mode():
            res = evaluate(policy, eval_env, task.eval_episodes, seed=10_000 + seed)
        state["last"] = value = res.mean_return if task.target == "return" else (res.success_rate or 0.0)
        if value >= task.threshold:
            state["hit"] = n
            return False
        return True

    t = time.perf_counter()
    try:
        learn(agent, budget, on_iter)
    finally:
        (agent.venv if side == "ours" else agent.env).close()
        eval_env.close()
    print(f"  [{task.key}] {side} seed {seed}: target at {state['hit']} steps "
          f"(last eval {task.target} {state['last']:.3f}, {time.perf_counter() - t:.0f}s)", flush=True)
    return state["hit"], state["last"]


def sample_efficiency(task: Task, seeds: list[int], budget: int, eval_every: int,
                      vec: dict[str, str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for side in ("ours", "sb3"):
        hits = [steps_to_target(task, side, s, budget, eval_every, (vec or {}).get(side))[0] for s in seeds]
        solved = [h for h in hits if h is not None]
        out[side] = {"hits": hits, "solved": len(solved),
                     "median": statistics.median(solved) if solved else None}
    return out


# -- main ----------------------------------------------------------------------------------
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--envs", default="cartpole,minihack", help="comma list of: cartpole, minihack")
    p.add_argument("--rounds", type=int, default=3, help="throughput rounds per side (alternating order)")
    p.add_argument("--tp-steps", type=int, default=0,
                   help="steps per throughput measurement (default: 65536 CartPole, 16384 MiniHack)")
    p.add_argument("--seeds", default="0,1,2,3,4", help="sample-efficiency seeds; empty to skip")
    p.add_argument("--budget", type=int, default=0,
                   help="sample-efficiency step budget per run (default: 300000 CartPole, 100000 MiniHack)")
    p.add_argument("--eval-every", type=int, default=0,
                   help="evaluate every this many steps (default: 4096 CartPole, 2048 MiniHack)")
    p.add_argument("--ours-vec", default="sync", choices=OURS_VEC, help="our vectorisation_mode")
    p.add_argument("--sb3-vec", default="dummy", choices=SB3_VEC, help="SB3's VecEnv: DummyVecEnv or SubprocVecEnv")
    p.add_argument("--best", action="store_true",
                   help="measure every vectorisation of both sides (throughput) and compare each side's best")
    p.add_argument("--sb3-threads", type=int, default=1,
                   help="torch threads for SB3 (ours uses its config, 1). On a shared 2-core box torch's "
                        "default (2) is much slower for SB3, so 1 is the conservative comparison")
    args = p.parse_args()

    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    torch.set_num_threads(args.sb3_threads)
    print(f"torch {torch.__version__}, SB3 torch threads {torch.get_num_threads()}, ours 1; "
          f"{len(os.sched_getaffinity(0))} usable cores, load {load()} (1/5/15 min)", flush=True)
    vecs = ({"ours": list(OURS_VEC), "sb3": list(SB3_VEC)} if args.best
            else {"ours": [args.ours_vec], "sb3": [args.sb3_vec]})
    rows = []
    for key in [k.strip() for k in args.envs.split(",") if k.strip()]:
        task = TASKS[key]
        steps = args.tp_steps or task.tp_steps
        tp = throughput(task, steps, args.rounds, vecs)
        se = None
        if seeds:
            se = sample_efficiency(task, seeds, args.budget or task.budget, args.eval_every or task.eval_every,
                                   tp["vec"])
        rows.append((task, tp, se, steps))

    print("\n## PPO throughput (SPS, median of rounds; ratio = ours / SB3)\n")
    print("| env | ours SPS (vec) | SB3 SPS (vec) | ratio | agent µs/step ours | agent µs/step SB3 | agent ratio | "
          "env-only SPS ours / SB3 | rounds x steps |")
    print("|---|---|---|---|---|---|---|---|---|")
    for task, tp, _, steps in rows:
        us, vec = tp["agent_us"], tp["vec"]
        print(f"| {task.env_id} | {tp['sps']['ours']:.0f} ({vec['ours']}) | {tp['sps']['sb3']:.0f} ({vec['sb3']}) | "
              f"{tp['ratio']:.2f}x | {us['ours']:.1f} | {us['sb3']:.1f} | {us['sb3'] / us['ours']:.2f}x | "
              f"{tp['env_only']['ours']:.0f} / {tp['env_only']['sb3']:.0f} | {args.rounds} x {steps} |")
    print("\nagent µs/step: wall time outside env.step per env step (rollout inference, buffers, GAE, "
          "updates); env-only: random actions through each side's env stack.")
    if args.best:
        print("\n## Every vectorisation measured (SPS median of rounds)\n")
        print("| env | side | vec | SPS | SPS per round | env.step share | agent µs/step | env-only SPS |")
        print("|---|---|---|---|---|---|---|---|")
        for task, tp, _, _ in rows:
            for (side, vec), c in tp["configs"].items():
                rounds = ", ".join(f"{x:.0f}" for x in c["all"])
                print(f"| {task.env_id} | {side} | {vec} | {c['sps']:.0f} | {rounds} | {c['env_frac']:.0%} | "
                      f"{c['agent_us']:.1f} | {c['env_only']:.0f} |")
    print(f"\nload after: {load()}")
    if seeds:
        print("\n## Sample efficiency (steps until the deterministic eval reaches the target)\n")
        print("| env | target | ours: solved / median steps | SB3: solved / median steps | ours per seed | "
              "SB3 per seed |")
        print("|---|---|---|---|---|---|")
        for task, _, se, _ in rows:
            target = f"{task.target} >= {task.threshold:g} ({task.eval_episodes} ep)"
            cells = [f"{se[s]['solved']}/{len(seeds)} / {se[s]['median']}" for s in ("ours", "sb3")]
            per = [", ".join(str(h) for h in se[s]["hits"]) for s in ("ours", "sb3")]
            print(f"| {task.env_id} | {target} | {cells[0]} | {cells[1]} | {per[0]} | {per[1]} |")


if __name__ == "__main__":
    main()
