"""``text_ppo`` on the real ALFWorld engine: the Agent protocol (learn/act/save/load), config
errors, and a learning test (success clearly above a random policy on the same games)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("alfworld")
torch = pytest.importorskip("torch")

import rewardlab  # noqa: E402
from rewardlab.agents import AGENTS  # noqa: E402
from rewardlab.agents.text_policy import SlotScorer, make_text_ppo  # noqa: E402
from rewardlab.core.terms import Term  # noqa: E402
from rewardlab.errors import ConfigError, InvalidArgument  # noqa: E402
from rewardlab.experiment.evaluate import evaluate  # noqa: E402

EASY = dict(max_receptacles=3, num_distractors=0, closed_containers=False, max_games=8, max_steps=15,
            games_per_type=8, heldout_per_type=1)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("alfworld_tp"))


def _venv(data_dir, n=2, reward=("env",), **kw):
    return rewardlab.make_vec("alfworld/PickAndPlace-v0", n, reward=list(reward), data_dir=data_dir,
                              **{**EASY, **kw})


class _Counter:
    def __init__(self, stop_after=None):
        self.calls, self.stop_after = [], stop_after

    def on_iteration(self, step, metrics):
        self.calls.append((step, metrics))
        return self.stop_after is None or len(self.calls) < self.stop_after


def test_registered_and_protocol(data_dir, tmp_path):
    venv = _venv(data_dir)
    agent = AGENTS.get("text_ppo")(venv, gamma=0.95, seed=0, params={"n_steps": 4})
    cb = _Counter()
    agent.learn(16, cb)
    assert agent.num_timesteps == 16 and [s for s, _ in cb.calls] == [8, 16]
    m = cb.calls[-1][1]
    assert all(np.isfinite(m[k]) for k in ("losses/policy_loss", "losses/value_loss", "losses/entropy"))
    obs, _ = venv.reset(seed=3)
    a = agent.act(obs, deterministic=True)
    assert a.shape == (2,) and all(obs["action_mask"][i, a[i]] == 1 for i in range(2))  # never a masked slot
    agent.save(tmp_path / "ckpt")
    other = make_text_ppo(venv, gamma=0.95, seed=1, params={"n_steps": 4})
    assert not np.array_equal(other.policy.scorer(_t(obs))[0].detach().numpy(),
                              agent.policy.scorer(_t(obs))[0].detach().numpy())
    other.load(tmp_path / "ckpt")
    assert other.num_timesteps == 16
    np.testing.assert_array_equal(other.act(obs), a)
    other.learn(24, _Counter())  # continues from the loaded step
    assert other.num_timesteps == 24
    stop = _Counter(stop_after=1)
    agent.learn(1000, stop)
    assert len(stop.calls) == 1
    venv.close()


class Spy(Term):
    """Env reward; records every agent hook text_ppo calls (it is the PPO core's, so all of them)."""

    name = "spy"
    discount = None

    def __init__(self):
        self.gammas, self.agent, self.loaded, self.extra_calls = [], None, None, 0

    def __call__(self, t):
        return np.asarray(t.env_reward, np.float32)

    def update(self, rollout):
        self.gammas.append(rollout.gamma)
        return {"updates": float(len(self.gammas))}

    def extra_advantages(self, rollout):
        self.extra_calls += 1
        return np.zeros(rollout.rewards.shape, np.float32)

    def bind_agent(self, agent):
        self.agent = agent

    def state_dict(self):
        return {"updates": len(self.gammas)}

    def load_state_dict(self, state):
        self.loaded = state


def test_text_ppo_calls_every_term_hook(data_dir, tmp_path):
    term = Spy()
    term.discount = 0.8
    venv = rewardlab.make_vec("alfworld/PickAndPlace-v0", 2, reward=rewardlab.RewardStack([term]), data_dir=data_dir,
                              **EASY)
    agent = make_text_ppo(venv, gamma=0.95, seed=0, params={"n_steps": 4})
    assert term.agent is agent
    cb = _Counter()
    agent.learn(16, cb)
    assert term.gammas == [0.8, 0.8] and term.extra_calls == 2
    assert [m["reward_terms/spy/updates"] for _, m in cb.calls] == [1.0, 2.0]
    agent.save(tmp_path / "ckpt")
    other_term = Spy()
    other = make_text_ppo(rewardlab.make_vec("alfworld/PickAndPlace-v0", 2, reward=rewardlab.RewardStack([other_term]),
                                             data_dir=data_dir, **EASY), gamma=0.95, seed=0, params={"n_steps": 4})
    other.load(tmp_path / "ckpt")
    assert other_term.loaded == {"updates": 2}
    venv.close()


def _t(obs):
    return {k: torch.as_tensor(v) for k, v in obs.items()}


def test_masked_slots_get_zero_probability():
    net = SlotScorer(64, 8)
    obs = {"obs": torch.randint(0, 64, (3, 5)), "goal": torch.randint(0, 64, (3, 4)),
           "commands": torch.randint(0, 64, (3, 6, 4)), "action_mask": torch.tensor([[1, 1, 0, 0, 0, 0]] * 3)}
    logits, value = net(obs)
    p = torch.softmax(logits, -1)
    assert torch.all(p[:, 2:] == 0) and torch.allclose(p.sum(-1), torch.ones(3)) and value.shape == (3,)


def test_bad_config_and_env(data_dir, tmp_path):
    venv = _venv(data_dir, n=1)
    with pytest.raises(ConfigError, match="agent.params.lr: unknown parameter for agent 'text_ppo'"):
        make_text_ppo(venv, gamma=0.9, seed=0, params={"lr": 0.1})
    with pytest.raises(ConfigError, match="learning_rate"):
        make_text_ppo(venv, gamma=0.9, seed=0, params={"learning_rate": -1.0})
    with pytest.raises(ConfigError, match="n_steps"):
        make_text_ppo(venv, gamma=0.9, seed=0, params={"n_steps": 0})
    agent = make_text_ppo(venv, gamma=0.9, seed=0, params={})
    with pytest.raises(InvalidArgument, match="not a text_ppo checkpoint"):
        agent.load(tmp_path / "nothing")
    agent.save(tmp_path / "a")
    with pytest.raises(InvalidArgument, match="different text_ppo config"):
        make_text_ppo(venv, gamma=0.9, seed=0, params={"embed_dim": 32}).load(tmp_path / "a")
    venv.close()
    with pytest.raises(InvalidArgument, match="Dict observation"):
        make_text_ppo(rewardlab.make_vec("CartPole-v1", 1), gamma=0.9, seed=0, params={})


@pytest.mark.slow
def test_text_ppo_learns_pick_and_place(data_dir):
    """Success of the trained greedy policy is clearly above a uniform random policy over the
    admissible commands, on the same 8 games and evaluation seeds."""
    venv = _venv(data_dir, n=4, reward=("env", "alfworld/subgoal_progress"))
    ev = rewardlab.make_vec("alfworld/PickAndPlace-v0", 4, data_dir=data_dir, **EASY)
    rng = np.random.default_rng(0)

    def random_policy(obs, deterministic):
        return np.array([rng.choice(np.flatnonzero(m)) for m in obs["action_mask"]])

    rand = evaluate(random_policy, ev, 24, seed=123).success_rate
    agent = make_text_ppo(venv, gamma=0.95, seed=0, params={"n_steps": 32, "learning_rate": 1e-3})
    agent.learn(2048, None)
    trained = evaluate(agent.act, ev, 24, seed=123).success_rate
    print(f"random success {rand:.3f}, text_ppo success {trained:.3f}")
    assert trained >= rand + 0.25, (rand, trained)
    venv.close()
    ev.close()
