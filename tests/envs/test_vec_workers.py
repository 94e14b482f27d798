"""``vectorization_mode="workers"``: k processes, each a SyncVectorEnv of n/k copies, give what sync gives,
step for step (observations, rewards, dones, infos with their masks, reward terms, episode records),
and end cleanly: close, a worker that raises, a worker that is killed."""

import multiprocessing as mp
import os
import signal

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import rewardlab
from rewardlab.envs.workers import WorkerError, WorkerVectorEnv, split_sizes
from rewardlab.errors import InvalidArgument

ROOM = "minihack/Room-5x5"
REWARD = ["env", "step_penalty", {"name": "potential", "params": {"potential": "minihack/stairs_distance"}}]


def assert_same(a, b, where="out"):
    """Equal values, types, dtypes and keys, recursively (dicts, tuples, object arrays, arrays)."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} vs {type(b).__name__}"
    if isinstance(a, dict):
        assert list(sorted(a)) == list(sorted(b)), f"{where}: keys {sorted(a)} vs {sorted(b)}"
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, f"{where}: {a.dtype}{a.shape} vs {b.dtype}{b.shape}"
        if a.dtype == object:
            for i, (x, y) in enumerate(zip(a.ravel(), b.ravel(), strict=True)):
                assert_same(x, y, f"{where}[{i}]")
        else:
            np.testing.assert_array_equal(a, b, err_msg=where)
    else:
        assert a == b, f"{where}: {a!r} vs {b!r}"


def run_side_by_side(sync, workers, steps, seed):
    """Same seeded reset and random actions on both; every output compared. Returns episodes ended."""
    rng = np.random.default_rng(seed)
    assert_same(sync.reset(seed=seed), workers.reset(seed=seed), "reset")
    ended = 0
    for t in range(steps):
        actions = rng.integers(0, sync.single_action_space.n, sync.num_envs)
        out_s, out_w = sync.step(actions), workers.step(actions)
        assert_same(out_s, out_w, f"step {t}")
        ended += int((out_s[2] | out_s[3]).sum())
    return ended


def test_split_sizes_spread_the_remainder():
    assert split_sizes(8, 2) == (4, 4)
    assert split_sizes(5, 2) == (3, 2)
    assert split_sizes(10, 4) == (3, 3, 2, 2)
    assert split_sizes(3, 8) == (1, 1, 1)  # never an empty worker
    assert sum(split_sizes(97, 7)) == 97


@pytest.mark.parametrize("inline", [False, True])
def test_minihack_workers_match_sync_step_for_step_with_shaping(inline):
    """Room-5x5, 5 copies in 2 groups (3 + 2), 3-term stack: same obs, rewards, dones, infos (final_obs,
    final_info, reward_terms, episode_stats) every step, and the same episode records; ``inline``: the
    first group steps in the main process."""
    sync = rewardlab.make_vec(ROOM, 5, reward=REWARD, gamma=0.99, vectorization_mode="sync")
    work = rewardlab.make_vec(ROOM, 5, reward=REWARD, gamma=0.99, vectorization_mode="workers",
                              vector_kwargs={"workers": 2, "inline": inline})
    try:
        assert isinstance(work.env, WorkerVectorEnv) and work.env.group_sizes == (3, 2)
        assert len(work.env.processes) == (1 if inline else 2)
        assert work.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP and work.spec.id == ROOM
        assert work.single_observation_space == sync.single_observation_space
        ended = run_side_by_side(sync, work, 300, seed=3)
        assert ended >= 10  # episode ends (and autoresets) were part of the comparison
        eps_s, eps_w = sync.pop_episodes(), work.pop_episodes()
        assert len(eps_w) == ended
        assert [(e.env_id, e.true_return, e.shaped_return, e.length, e.terms) for e in eps_s] == \
            [(e.env_id, e.true_return, e.shaped_return, e.length, e.terms) for e in eps_w]
    finally:
        sync.close()
        work.close()


@pytest.mark.parametrize("mode", ["same_step", "next_step"])
def test_cartpole_workers_match_sync_in_both_autoreset_modes(mode):
    """CartPole, 7 copies on 3 workers (3 + 2 + 2), unshaped and shaped, both autoreset modes."""
    for reward in (None, ["env", "step_penalty"]):
        sync = rewardlab.make_vec("CartPole-v1", 7, reward=reward, vectorization_mode="sync", autoreset_mode=mode)
        work = rewardlab.make_vec("CartPole-v1", 7, reward=reward, vectorization_mode="workers",
                                  autoreset_mode=mode, vector_kwargs={"workers": 3})
        try:
            assert work.unwrapped.group_sizes == (3, 2, 2)
            assert run_side_by_side(sync, work, 300, seed=11) >= 50
            seeds = [5, 6, 1, 2, 3, 4, 9]  # a seed list goes to the copies in order
            assert_same(sync.reset(seed=seeds), work.reset(seed=seeds), "reset(seed=list)")
            assert work.unwrapped.get_attr("np_random_seed") == tuple(seeds)
            assert_same(sync.unwrapped.get_attr("np_random_seed"), work.unwrapped.get_attr("np_random_seed"))
        finally:
            sync.close()
            work.close()


def test_dict_observations_and_attributes():
    """A Dict observation space (two MiniHack keys) is concatenated like sync's; set_attr reaches each copy."""
    obs = ["chars_crop", "blstats"]
    sync = rewardlab.make_vec(ROOM, 3, reward=["env"], vectorization_mode="sync", obs=obs)
    work = rewardlab.make_vec(ROOM, 3, reward=["env"], vectorization_mode="workers", obs=obs,
                              vector_kwargs={"workers": 2})
    try:
        assert isinstance(work.single_observation_space, gym.spaces.Dict)
        assert run_side_by_side(sync, work, 200, seed=0) >= 1
        work.unwrapped.set_attr("marker", [10, 11, 12])
        assert work.unwrapped.get_attr("marker") == (10, 11, 12)
    finally:
        sync.close()
        work.close()


class _Boom(gym.Wrapper):
    """Raises on the ``at``-th step (counted over the env's life)."""

    def __init__(self, env, at):
        super().__init__(env)
        self.at, self.steps = at, 0

    def step(self, action):
        self.steps += 1
        if self.steps == self.at:
            raise RuntimeError(f"boom at step {self.steps}")
        return self.env.step(action)


def _children():
    return {p.pid for p in mp.active_children()}


def _assert_reaped(procs):
    for p in procs:
        assert p.exitcode is not None, f"worker pid {p.pid} still running"
        with pytest.raises(ChildProcessError):  # reaped: no zombie left for this pid
            os.waitpid(p.pid, os.WNOHANG)
    assert not {p.pid for p in procs} & _children()


def test_close_ends_every_worker_and_is_idempotent():
    venv = rewardlab.make_vec("CartPole-v1", 4, vectorization_mode="workers", vector_kwargs={"workers": 2})
    procs = venv.unwrapped.processes
    assert len(procs) == 2 and all(p.is_alive() for p in procs)
    venv.reset(seed=0)
    venv.close()
    _assert_reaped(procs)
    assert all(p.exitcode == 0 for p in procs)  # closed politely, not terminated
    venv.close()  # a second close is a no-op
    with pytest.raises(WorkerError, match="closed"):
        venv.step(np.zeros(4, np.int64))


def test_a_worker_that_raises_is_named_and_everything_is_reaped():
    fns = [lambda: gym.make("CartPole-v1")] * 3 + [lambda: _Boom(gym.make("CartPole-v1"), at=3)]
    venv = WorkerVectorEnv(fns, workers=2, autoreset_mode="SameStep")
    procs = venv.processes
    venv.reset(seed=0)
    venv.step(np.zeros(4, np.int64))
    venv.step(np.zeros(4, np.int64))
    with pytest.raises(WorkerError, match=r"worker 1 \(pid \d+, envs 2-3\) raised RuntimeError: boom at step 3 "
                                          r"during 'step'") as err:
        venv.step(np.zeros(4, np.int64))
    assert "worker traceback" in str(err.value) and "test_vec_workers.py" in str(err.value)  # where it raised
    assert venv.closed
    _assert_reaped(procs)


def test_an_error_in_the_main_process_group_closes_the_workers():
    fns = [lambda: _Boom(gym.make("CartPole-v1"), at=2)] + [lambda: gym.make("CartPole-v1")] * 2
    venv = WorkerVectorEnv(fns, workers=2, inline=True)
    procs = venv.processes
    assert len(procs) == 1
    venv.reset(seed=0)
    venv.step(np.zeros(3, np.int64))
    with pytest.raises(WorkerError, match=r"group 0 \(in the main process, pid \d+, envs 0-1\) raised RuntimeError: "
                                          r"boom at step 2 during 'step'") as err:
        venv.step(np.zeros(3, np.int64))
    assert isinstance(err.value.__cause__, RuntimeError)
    _assert_reaped(procs)


def test_a_killed_worker_is_named_and_everything_is_reaped():
    venv = WorkerVectorEnv([lambda: gym.make("CartPole-v1")] * 3, workers=2)
    procs = venv.processes
    venv.reset(seed=0)
    os.kill(procs[0].pid, signal.SIGKILL)
    procs[0].join(5)
    with pytest.raises(WorkerError, match=r"worker 0 \(pid \d+, envs 0-1\) died during 'step', exit code -9"):
        venv.step(np.zeros(3, np.int64))
    _assert_reaped(procs)


def test_a_worker_that_fails_to_build_its_envs_is_named():
    def bad():
        raise ValueError("no such level")

    with pytest.raises(WorkerError, match=r"worker 1 \(pid \d+, env 1\) raised ValueError: no such level during "
                                          r"'start'"):
        WorkerVectorEnv([lambda: gym.make("CartPole-v1"), bad], workers=2)


def test_argument_errors_are_clear():
    with pytest.raises(InvalidArgument, match="workers must be an integer >= 1"):
        WorkerVectorEnv([lambda: gym.make("CartPole-v1")], workers=0)
    with pytest.raises(InvalidArgument, match="vector_kwargs for vectorization_mode='workers' may hold"):
        rewardlab.make_vec("CartPole-v1", 2, vectorization_mode="workers", vector_kwargs={"shared_memory": True})
    venv = rewardlab.make_vec("CartPole-v1", 3, vectorization_mode="workers", vector_kwargs={"workers": 2})
    try:
        venv.reset(seed=0)
        with pytest.raises(InvalidArgument, match=r"actions must have one entry per env \(3\), got 2"):
            venv.step(np.zeros(2, np.int64))
    finally:
        venv.close()


def test_worker_cores_pin_one_group_per_core_and_never_the_main_process(monkeypatch):
    from rewardlab.envs import workers as W

    monkeypatch.setattr(W.os, "sched_getaffinity", lambda pid: {3, 5}, raising=False)
    assert W.worker_cores(2, inline=False) == [3, 5]
    assert W.worker_cores(2, inline=True) == [None, 5]  # group 0 is stepped by the main process
    assert W.worker_cores(1, inline=False) == [None]  # fewer groups than cores: two such envs would share core 3
    assert W.worker_cores(3, inline=False) == [None, None, None]  # more groups than cores: the scheduler spreads


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="CPU affinity is Linux-only")
def test_workers_run_on_the_cores_they_were_pinned_to():
    cores = sorted(os.sched_getaffinity(0))
    venv = WorkerVectorEnv([lambda: gym.make("CartPole-v1")] * 2, workers=1, pin=[cores[-1]])
    try:
        assert os.sched_getaffinity(venv.processes[0].pid) == {cores[-1]}
        assert os.sched_getaffinity(0) == set(cores)  # the main process is left alone
    finally:
        venv.close()
    for bad, match in [([], "non-empty list of core ids"), ("0", "non-empty list of core ids"),
                       ([max(cores) + 1], "may not use")]:
        with pytest.raises(InvalidArgument, match=match):
            WorkerVectorEnv([lambda: gym.make("CartPole-v1")], pin=bad)
    venv = WorkerVectorEnv([lambda: gym.make("CartPole-v1")] * len(cores))  # default: one worker per core, pinned
    try:
        assert [os.sched_getaffinity(p.pid) for p in venv.processes] == [{c} for c in cores]
    finally:
        venv.close()
    venv = WorkerVectorEnv([lambda: gym.make("CartPole-v1")] * 2, workers=2, pin=False)
    try:
        assert all(os.sched_getaffinity(p.pid) == set(cores) for p in venv.processes)
    finally:
        venv.close()


def test_step_async_then_step_wait_is_step_and_misuse_is_refused():
    """Two shaped groups stepped with step_async/step_wait (the pipelined pattern of benchmarks/vector_modes.py)
    give what one synchronous shaped env over the same copies gives; out-of-order calls get clear errors."""
    reward = ["env", "step_penalty"]
    whole = rewardlab.make_vec("CartPole-v1", 4, reward=reward, vectorization_mode="sync")
    groups = [rewardlab.make_vec("CartPole-v1", 2, reward=reward, vectorization_mode="workers",
                                 vector_kwargs={"workers": 1}) for _ in range(2)]
    try:
        obs = whole.reset(seed=7)[0]
        assert_same(obs, np.concatenate([g.reset(seed=7 + 2 * i)[0] for i, g in enumerate(groups)]))
        rng = np.random.default_rng(0)
        ended = 0
        for t in range(200):
            a = rng.integers(0, 2, 4)
            for i, g in enumerate(groups):
                g.step_async(a[2 * i:2 * i + 2])
            outs = [g.step_wait() for g in groups]
            want = whole.step(a)
            for k in range(4):  # obs, shaped reward, terminated, truncated
                assert_same(want[k], np.concatenate([o[k] for o in outs]), f"step {t}, item {k}")
            for name in ("env", "step_penalty"):
                assert_same(want[4]["reward_terms"][name],
                            np.concatenate([o[4]["reward_terms"][name] for o in outs]), f"step {t}, {name}")
            ended += int((want[2] | want[3]).sum())
        assert ended >= 10
        g = groups[0]
        with pytest.raises(InvalidArgument, match="step_wait called without a pending step_async"):
            g.step_wait()
        g.step_async(np.zeros(2, np.int64))
        with pytest.raises(InvalidArgument, match="step_async called twice"):
            g.step_async(np.zeros(2, np.int64))
        with pytest.raises(InvalidArgument, match="reset while a step_async awaits its step_wait"):
            g.unwrapped.reset(seed=0)
        g.step_wait()
        with pytest.raises(InvalidArgument, match="step_async needs a vector env that steps in the background"):
            whole.step_async(np.zeros(4, np.int64))
    finally:
        whole.close()
        for g in groups:
            g.close()
