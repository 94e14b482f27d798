"""``rewardlab.make_vec`` delegates to ``gymnasium.make_vec``: sync and async (NetHack in worker
processes) give the same transitions, and the shaping bookkeeping stays exact."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv

import rewardlab
from rewardlab.core.wrappers import pop_episodes
from rewardlab.errors import InvalidArgument

ROOM = "minihack/Room-5x5"
REWARD = ["env", "step_penalty", {"name": "potential", "params": {"potential": "minihack/stairs_distance"}}]


def _run(venv, steps, seed=0):
    """Random actions (fixed seed); per-step rewards, term sums, env rewards, and episode records."""
    rng = np.random.default_rng(seed)
    venv.reset(seed=seed)
    n = venv.num_envs
    rows, running = [], np.zeros(n)
    true_returns = []
    for _ in range(steps):
        obs, reward, term, trunc, info = venv.step(rng.integers(0, venv.single_action_space.n, n))
        terms = sum(info["reward_terms"].values())
        np.testing.assert_allclose(terms, reward, atol=1e-6)  # terms sum to the reward, every step
        running += info["reward_env"]
        for i in np.flatnonzero(term | trunc):
            true_returns.append((i, running[i]))
            running[i] = 0.0
        rows.append((np.array(obs, copy=True), reward.copy(), info["reward_env"].copy()))
    return rows, true_returns, venv.pop_episodes()


def test_async_minihack_matches_sync_and_keeps_exact_bookkeeping():
    sync = rewardlab.make_vec(ROOM, 3, reward=REWARD, gamma=0.99, vectorization_mode="sync")
    asyn = rewardlab.make_vec(ROOM, 3, reward=REWARD, gamma=0.99, vectorization_mode="async")
    assert isinstance(sync.env, SyncVectorEnv) and isinstance(asyn.env, AsyncVectorEnv)
    assert asyn.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP and asyn.spec.id == ROOM
    try:
        rows_s, true_s, eps_s = _run(sync, 250)
        rows_a, true_a, eps_a = _run(asyn, 250)
    finally:
        sync.close()
        asyn.close()
    assert len(eps_a) >= 3  # episodes ended and were recorded
    for (o_s, r_s, e_s), (o_a, r_a, e_a) in zip(rows_s, rows_a, strict=True):
        np.testing.assert_array_equal(o_s, o_a)
        np.testing.assert_array_equal(r_s, r_a)
        np.testing.assert_array_equal(e_s, e_a)
    assert [(e.env_id, e.true_return, e.shaped_return, e.length) for e in eps_s] == \
        [(e.env_id, e.true_return, e.shaped_return, e.length) for e in eps_a]
    # The true return of every episode is the sum of the env's own rewards, exactly.
    assert [e.env_id for e in eps_a] == [int(i) for i, _ in true_a]
    assert [e.true_return for e in eps_a] == pytest.approx([r for _, r in true_a], abs=1e-12)
    for e in eps_a:
        assert sum(e.terms.values()) == pytest.approx(e.shaped_return, abs=1e-5)


def test_async_per_copy_wrappers_and_family_step_limit():
    venv = rewardlab.make_vec(ROOM, 2, reward=["env"], vectorization_mode="async", max_episode_steps=4,
                              wrappers=[gym.wrappers.RecordEpisodeStatistics])
    try:
        venv.reset(seed=1)
        for _ in range(4):  # action 0 is "wait": no episode ends before NLE's limit of 4 steps
            *_, trunc, info = venv.step(np.zeros(2, np.int64))
        assert trunc.all()
        final = info["final_info"]  # SAME_STEP: the ended episodes' last infos
        assert final["episode"]["l"].tolist() == [4, 4]  # the per-copy wrapper ran in the workers
        episodes = pop_episodes(venv)
        assert [(e.length, e.truncated) for e in episodes] == [(4, True), (4, True)]
        assert [e.true_return for e in episodes] == pytest.approx(final["episode"]["r"].tolist())
    finally:
        venv.close()


def test_make_vec_argument_errors_are_clear():
    with pytest.raises(InvalidArgument,
                       match="vectorization_mode must be 'sync', 'async', 'workers' or None, got 'threads'"):
        rewardlab.make_vec("CartPole-v1", 2, vectorization_mode="threads")
    with pytest.raises(InvalidArgument, match="num_envs must be an integer >= 1, got 0"):
        rewardlab.make_vec("CartPole-v1", 0)
    with pytest.raises(InvalidArgument, match="autoreset_mode must be one of"):
        rewardlab.make_vec("CartPole-v1", 2, autoreset_mode="sometimes")
    # A bad env kwarg fails in this process, before any worker starts.
    with pytest.raises(InvalidArgument, match="GridWorld size must be an integer >= 2, got 1"):
        rewardlab.make_vec("toy/GridWorld-v0", 2, vectorization_mode="async", size=1)


def test_cleanrl_style_loop_on_gymnasium_make_vec():
    """A user's own minimal loop (CleanRL's shape): Gymnasium's make_vec and wrappers, a torch policy,
    fixed (num_steps, num_envs) buffers, one policy-gradient step."""
    torch = pytest.importorskip("torch")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matmuls: a thread pool only adds contention (12.6 s vs 1.8 s at load 20)
    try:
        _cleanrl_loop(torch)
    finally:
        torch.set_num_threads(threads)


def _cleanrl_loop(torch):
    num_envs, num_steps = 8, 16
    envs = gym.make_vec(ROOM, num_envs, reward=["env", "step_penalty"], gamma=0.99)
    envs = gym.wrappers.vector.RecordEpisodeStatistics(envs)
    assert isinstance(envs.single_action_space, gym.spaces.Discrete)
    obs_dim = int(np.prod(envs.single_observation_space.shape))
    torch.manual_seed(0)
    policy = torch.nn.Sequential(torch.nn.Linear(obs_dim, 32), torch.nn.Tanh(),
                                 torch.nn.Linear(32, envs.single_action_space.n))
    optimizer = torch.optim.Adam(policy.parameters(), lr=1e-2)
    logps = torch.zeros((num_steps, num_envs))
    rewards = torch.zeros((num_steps, num_envs))
    returns_seen = []
    next_obs, _ = envs.reset(seed=0)
    for _iteration in range(2):
        for step in range(num_steps):
            x = torch.as_tensor(np.asarray(next_obs).reshape(num_envs, -1), dtype=torch.float32) / 128.0
            dist = torch.distributions.Categorical(logits=policy(x))
            action = dist.sample()
            logps[step] = dist.log_prob(action)
            next_obs, reward, term, trunc, info = envs.step(action.numpy())
            rewards[step] = torch.as_tensor(reward)
            if "episode" in info:
                returns_seen += info["episode"]["r"][info["_episode"]].tolist()
        before = [p.detach().clone() for p in policy.parameters()]
        loss = -(logps * (rewards - rewards.mean())).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        assert any(not torch.equal(a, b) for a, b in zip(before, policy.parameters(), strict=True))
        logps, rewards = logps.detach().clone(), rewards.clone()
    assert returns_seen, "no episode ended in 256 steps"
    # Gymnasium's RecordEpisodeStatistics (NEXT_STEP autoreset) and our records agree on the shaped return.
    ours = pop_episodes(envs)
    assert sorted(e.shaped_return for e in ours) == pytest.approx(sorted(returns_seen), abs=1e-4)
    envs.close()


def test_gymnasium_async_mode_shapes_each_copy_like_our_batched_shaping():
    """``gymnasium.make_vec(id, n, vectorization_mode="async", reward=...)``: one ShapedEnv per copy in
    the workers; same rewards, step for step, as our batched shaping with the same autoreset."""
    ours = rewardlab.make_vec(ROOM, 2, reward=REWARD, gamma=0.99, autoreset_mode="next_step")
    theirs = gym.make_vec(ROOM, 2, vectorization_mode="async", reward=REWARD, gamma=0.99)
    try:
        assert isinstance(theirs, AsyncVectorEnv)
        rng = np.random.default_rng(3)
        ours.reset(seed=5)
        theirs.reset(seed=5)
        ended = 0
        for _ in range(150):
            a = rng.integers(0, 8, 2)
            _, r_ours, term, trunc, _ = ours.step(a)
            _, r_theirs, _, _, info = theirs.step(a)
            np.testing.assert_allclose(r_theirs, r_ours, atol=1e-6)
            rows = info.get("_reward_terms", np.zeros(2, bool))  # absent on NEXT_STEP reset rows
            terms = sum(v for k, v in info["reward_terms"].items() if not k.startswith("_"))  # skip the masks
            np.testing.assert_allclose(terms[rows], r_theirs[rows], atol=1e-6)
            ended += int((term | trunc).sum())
        assert ended >= 2
    finally:
        ours.close()
        theirs.close()


def test_vector_modes_benchmark_runs_tiny():
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    res = subprocess.run([sys.executable, "benchmarks/vector_modes.py", "--num-envs", "2", "--steps", "5",
                          "--repeats", "1"], cwd=repo, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "ratio async/sync:" in res.stdout and "cores used:" in res.stdout
