"""Regenerate the ILD expert demonstrations shipped in ``rewardlab/imitation/data/``.

Three experts:

- ``--expert ppo``: an MLP trained with Brax's own PPO (``brax.training.agents.ppo``) on the
  task reward, on CPU (``rewardlab.imitation.experts.train_expert_ppo``); the default for Ant;
- ``--expert pd`` (Reacher only, the default there): a scripted Jacobian-transpose PD
  controller that drives the fingertip to the target (``rewardlab.imitation.ild.reacher_pd_expert``);
- ``--expert apg``: an MLP trained here by analytic policy gradient (the summed task reward
  differentiated through the Brax physics, with ILD's truncation and per-step clipping).

The expert is rolled out deterministically from ``--n-demos`` seeded initial states; the file
stores observations, actions, reset keys and returns. ``--n-heldout`` more expert trajectories
from other initial states are appended (``Demos.split``) to evaluate imitation on unseen starts.

    .venv/bin/python scripts/make_ild_expert.py reacher
    .venv/bin/python scripts/make_ild_expert.py ant --expert ppo --backend spring --horizon 100 \
        --ppo-steps 3000000 --n-demos 16 --n-heldout 8
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from rewardlab.imitation.experts import train_expert_ppo, zero_policy
from rewardlab.imitation.ild import DATA_DIR, MLPPolicy, collect_demos, reacher_pd_expert, train_expert_apg


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("env", help="Brax env name (reacher, ant, ...)")
    p.add_argument("--expert", choices=["pd", "apg", "ppo"], default=None, help="default: pd for reacher, else ppo")
    p.add_argument("--backend", default="positional")
    p.add_argument("--horizon", type=int, default=50)
    p.add_argument("--iterations", type=int, default=300, help="APG iterations")
    p.add_argument("--batch", type=int, default=32, help="APG batch of initial states")
    p.add_argument("--lr", type=float, default=3e-3, help="APG learning rate")
    p.add_argument("--ppo-steps", type=int, default=3_000_000, help="PPO env steps")
    p.add_argument("--ppo-envs", type=int, default=128, help="PPO parallel envs")
    p.add_argument("--n-demos", type=int, default=16)
    p.add_argument("--n-heldout", type=int, default=0, help="extra held-out expert trajectories")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--demo-seed", type=int, default=1234)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    expert = args.expert or ("pd" if args.env == "reacher" else "ppo")

    t0 = time.time()
    if expert == "pd":
        if args.env != "reacher":
            raise SystemExit("--expert pd is the scripted Reacher controller; use --expert ppo for other envs")
        policy = reacher_pd_expert()
    elif expert == "ppo":
        policy, curve = train_expert_ppo(args.env, args.backend, episode_length=args.horizon,
                                         num_timesteps=args.ppo_steps, seed=args.seed, num_envs=args.ppo_envs,
                                         batch_size=args.ppo_envs)
        print(f"PPO: {args.ppo_steps} env steps in {time.time() - t0:.0f} s; eval return (stochastic policy) "
              f"{curve[0][1]:.2f} at step 0 -> {curve[-1][1]:.2f}")
    else:
        params, _ = train_expert_apg(args.env, args.backend, horizon=args.horizon, iterations=args.iterations,
                                     batch=args.batch, lr=args.lr, seed=args.seed)
        policy = lambda obs: MLPPolicy.apply(params, obs)  # noqa: E731
    n = args.n_demos + args.n_heldout
    demos = collect_demos(args.env, args.backend, policy, horizon=args.horizon, n=n, seed=args.demo_seed,
                          n_train=args.n_demos)
    zero = collect_demos(args.env, args.backend, zero_policy(demos.actions.shape[-1]),
                         horizon=args.horizon, n=n, seed=args.demo_seed)
    out = args.out or DATA_DIR / f"ild_{args.env}.npz"
    demos.save(out)
    print(f"{expert} expert on {args.env}/{args.backend}, {args.n_demos} demos (+{args.n_heldout} held out) x "
          f"{args.horizon} steps: return {demos.returns.mean():.3f} +- {demos.returns.std():.3f} "
          f"(zero actions: {zero.returns.mean():.3f}); file {out.stat().st_size / 1024:.0f} kB")
    if args.env == "reacher":
        final = np.linalg.norm(demos.obs[:, -1, 8:10], axis=1).mean()
        final0 = np.linalg.norm(zero.obs[:, -1, 8:10], axis=1).mean()
        print(f"final fingertip-target distance {final:.4f} (zero actions: {final0:.4f})")
    print(f"saved {out} in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
