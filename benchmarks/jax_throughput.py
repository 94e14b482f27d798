"""Aggregate training steps/s of ``jax_ppo`` with N = 1, 4, 16, 64 runs in one compiled program,
vs our torch PPO (``rewardlab.agents.ppo``) and Stable-Baselines3 PPO, at the same hyperparameters.

The same PPO settings everywhere (those of ``benchmarks/ppo_throughput.py``): 8 envs, 128 steps
per env, 4 epochs, 4 minibatches, MLP 64x64 tanh for actor and critic, Adam 2.5e-4 linearly
annealed, clip 0.2, ent 0.01, vf 0.5, GAE λ 0.95, γ 0.99, grad-norm 0.5.

- ``--task cartpole``: ``jax_ppo`` on ``gymnax/CartPole-v1``; torch PPO and SB3 on Gymnasium's
  ``CartPole-v1`` (``rewardlab.make_vec``, a ``SyncVectorEnv``; SB3's ``make_vec_env``);
- ``--task doorkey``: ``jax_ppo`` on ``minigrid/MiniGrid-DoorKey-5x5``; torch PPO on the same env
  through the Gymnasium adapter (``rewardlab.make_vec("minigrid/...")``, one jitted batched step).

The N runs of ``jax_ppo`` differ in seed *and* reward (the step-penalty weight is a traced
argument, one value per run): ``jit(vmap(train))(keys, reward_params)``. Compile time (``lower``
+ ``compile``) is reported apart from the run time; aggregate SPS = N · steps / run seconds.
The device, the core count and the machine load (``os.getloadavg``, before and after) are printed:
the machine is shared, so compare numbers from one invocation.

    python benchmarks/jax_throughput.py                          # N = 1, 4, 16, 64 on CartPole
    python benchmarks/jax_throughput.py --ns 1,16 --steps 65536 --torch-steps 32768 --plot docs/jax_throughput.png
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

import numpy as np

GAMMA, LR, N_ENVS, N_STEPS = 0.99, 2.5e-4, 8, 128
PARAMS = {"n_steps": N_STEPS, "n_epochs": 4, "n_minibatches": 4, "learning_rate": LR, "ent_coef": 0.01,
          "vf_coef": 0.5, "clip_coef": 0.2, "gae_lambda": 0.95, "max_grad_norm": 0.5}
TASKS = {"cartpole": ("gymnax/CartPole-v1", "CartPole-v1"),
         "doorkey": ("minigrid/MiniGrid-DoorKey-5x5", "minigrid/MiniGrid-DoorKey-5x5")}


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def jax_sps(env_id: str, n: int, steps: int) -> dict[str, float]:
    import jax
    import jax.numpy as jnp

    import rewardlab.jax  # noqa: F401  (asks XLA for one CPU device per core before jax starts)
    from rewardlab.jax.config import JaxPPOConfig
    from rewardlab.jax.devices import run_sharding
    from rewardlab.jax.envs import make_env
    from rewardlab.jax.ppo import make_train
    from rewardlab.jax.terms import build_jax_stack, stack_params

    env = make_env(env_id)
    stack = build_jax_stack(["env", {"name": "step_penalty", "params": {"value": 0.01}}], env, gamma=GAMMA)
    ppo = make_train(env, stack, JaxPPOConfig(**PARAMS), num_envs=N_ENVS, total_steps=steps, gamma=GAMMA)
    keys = jnp.stack([jax.random.PRNGKey(i) for i in range(n)])
    base = stack.default_params()
    # one reward variant per run: step-penalty weights spread over [0, 2]
    params = stack_params([{**base, "step_penalty": {**base["step_penalty"], "weight": jnp.float32(w)}}
                           for w in np.linspace(0.0, 2.0, n)])
    sharding = run_sharding(n)  # the runs split over the devices, as JaxPPOTrainer does
    keys, params = jax.device_put((keys, params), sharding)
    t = time.perf_counter()
    compiled = jax.jit(jax.vmap(ppo.train), in_shardings=sharding, out_shardings=sharding).lower(keys, params).compile()
    compile_s = time.perf_counter() - t
    t = time.perf_counter()
    state, metrics = compiled(keys, params)
    jax.block_until_ready((state, metrics))
    run_s = time.perf_counter() - t
    done = ppo.num_updates * ppo.steps_per_update
    return {"n": n, "steps_per_run": done, "compile_s": compile_s, "run_s": run_s, "sps": n * done / run_s,
            "devices": len(sharding.mesh.devices.flat)}


def torch_sps(env_id: str, steps: int) -> dict[str, float]:
    import rewardlab
    from rewardlab.agents.ppo import make_ppo

    venv = rewardlab.make_vec(env_id, N_ENVS, reward=["env"], gamma=GAMMA)
    agent = make_ppo(venv, gamma=GAMMA, seed=0, params={**PARAMS, "encoder": "mlp"})
    agent.learn(2 * N_STEPS * N_ENVS, None)  # warm-up: lazy init, first allocations
    t = time.perf_counter()
    agent.learn(agent.num_timesteps + steps, None)
    run_s = time.perf_counter() - t
    return {"steps": steps, "run_s": run_s, "sps": steps / run_s}


def sb3_sps(env_id: str, steps: int) -> dict[str, float]:
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    # One torch thread, as our PPO (torch_threads=1): with its default two OpenMP threads SB3 ran
    # at under 300 SPS here next to the JAX thread pools on a loaded 2-core machine.
    torch.set_num_threads(1)

    env = make_vec_env(env_id, n_envs=N_ENVS, seed=0)
    model = PPO("MlpPolicy", env, learning_rate=lambda progress: LR * progress, n_steps=N_STEPS,
                batch_size=N_STEPS * N_ENVS // 4, n_epochs=4, gamma=GAMMA, gae_lambda=0.95, clip_range=0.2,
                ent_coef=0.01, vf_coef=0.5, max_grad_norm=0.5,
                policy_kwargs={"net_arch": {"pi": [64, 64], "vf": [64, 64]}}, device="cpu", seed=0, verbose=0)
    model.learn(2 * N_STEPS * N_ENVS)
    t = time.perf_counter()
    model.learn(steps, reset_num_timesteps=False)
    run_s = time.perf_counter() - t
    return {"steps": steps, "run_s": run_s, "sps": steps / run_s}


def plot(result: dict[str, Any], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = [r["n"] for r in result["jax"]]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(ns, [r["sps"] for r in result["jax"]], "o-", label="jax_ppo, N runs in one program")
    for name, style in (("torch", "--"), ("sb3", ":")):
        if name in result:
            ax.axhline(result[name]["sps"], ls=style, color="grey" if name == "torch" else "black",
                       label=f"{'our torch PPO' if name == 'torch' else 'SB3 PPO'}, one run")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("runs N (seeds × reward variants)")
    ax.set_ylabel("aggregate training steps/s")
    ax.set_title(f"PPO on {result['task']} ({result['device']}, load {result['load_before']})", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"plot: {path}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", choices=sorted(TASKS), default="cartpole")
    p.add_argument("--ns", default="1,4,16,64", help="comma-separated N (runs in one program)")
    p.add_argument("--steps", type=int, default=131_072, help="env steps per jax_ppo run")
    p.add_argument("--torch-steps", type=int, default=65_536, help="env steps of the torch PPO / SB3 run")
    p.add_argument("--no-sb3", action="store_true")
    p.add_argument("--plot", help="write the scaling plot here (PNG)")
    p.add_argument("--json", help="write the numbers here")
    args = p.parse_args()

    import jax

    import rewardlab.jax  # noqa: F401  (before jax starts: one CPU device per core)

    jax_id, gym_id = TASKS[args.task]
    result: dict[str, Any] = {"task": args.task, "device": str(jax.devices()[0]), "backend": jax.default_backend(),
                              "devices": len(jax.devices()), "cores": os.cpu_count(), "load_before": load(),
                              "jax": []}
    print(f"device {result['device']} ({result['backend']}, {result['devices']} devices), {result['cores']} cores, "
          f"load {result['load_before']}")
    for n in [int(x) for x in args.ns.split(",") if x]:
        r = jax_sps(jax_id, n, args.steps)
        result["jax"].append(r)
        print(f"jax_ppo N={n:>3}: {r['sps']:>10,.0f} aggregate SPS ({n} × {r['steps_per_run']:,} steps in "
              f"{r['run_s']:.1f} s on {r['devices']} devices; compile {r['compile_s']:.1f} s; load {load()})",
              flush=True)
    r = torch_sps(gym_id, args.torch_steps)
    result["torch"] = r
    print(f"torch PPO    : {r['sps']:>10,.0f} SPS ({r['steps']:,} steps in {r['run_s']:.1f} s; load {load()})",
          flush=True)
    if not args.no_sb3 and args.task == "cartpole":
        r = sb3_sps(gym_id, args.torch_steps)
        result["sb3"] = r
        print(f"SB3 PPO      : {r['sps']:>10,.0f} SPS ({r['steps']:,} steps in {r['run_s']:.1f} s; load {load()})",
              flush=True)
    for r in result["jax"]:
        print(f"N={r['n']:>3}: {r['sps'] / result['torch']['sps']:.1f}x our torch PPO"
              + (f", {r['sps'] / result['sb3']['sps']:.1f}x SB3" if "sb3" in result else ""))
    result["load_after"] = load()
    print(f"load after {result['load_after']}")
    if args.plot:
        plot(result, args.plot)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
