"""Basic terms (env, step_penalty, novelty) and event terms (message, reach, pickup)."""

from __future__ import annotations

import numpy as np
import pytest

from rewardlab.core import RewardStack, Transition, build_stack
from rewardlab.errors import ConfigError, InvalidArgument
from rewardlab.shaping.basic import EnvReward, Novelty, StepPenalty
from rewardlab.shaping.events import MessageEvent, PickupEvent, ReachEvent


def tr(n=None, *, env_reward=None, next_obs=None, info=None, env_ids=None) -> Transition:
    if env_reward is None:
        env_reward = np.zeros(n)
    n = len(env_reward)
    return Transition(None, np.zeros(n, np.int64), next_obs, np.asarray(env_reward, np.float64),
                      np.zeros(n, bool), np.zeros(n, bool), info or {},
                      None if env_ids is None else np.asarray(env_ids))


def objs(*items) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


# -- env / step_penalty -----------------------------------------------------------------------


def test_env_term_is_the_env_reward_as_float32():
    out = EnvReward()(tr(env_reward=[1.5, -2.0, 0.0]))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [1.5, -2.0, 0.0])


def test_step_penalty_is_minus_value_every_step():
    np.testing.assert_array_equal(StepPenalty()(tr(2)), np.float32([-0.01, -0.01]))
    np.testing.assert_array_equal(StepPenalty(0.5)(tr(3)), np.float32([-0.5, -0.5, -0.5]))
    np.testing.assert_array_equal(StepPenalty(-0.25)(tr(1)), np.float32([0.25]))  # a negative penalty is a bonus


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_step_penalty_rejects_non_finite(value):
    with pytest.raises(InvalidArgument, match=f"step_penalty value must be finite, got {value}"):
        StepPenalty(value)


# -- novelty ----------------------------------------------------------------------------------


def test_novelty_decays_as_one_over_sqrt_count():
    term = Novelty()
    values = [float(term(tr(1, next_obs=np.array([[3, 1]])))[0]) for _ in range(4)]
    np.testing.assert_allclose(values, [1.0, 1 / np.sqrt(2), 1 / np.sqrt(3), 0.5], rtol=1e-6)
    # A new state starts at 1 again; the old one keeps counting.
    np.testing.assert_allclose(term(tr(2, next_obs=np.array([[0, 0], [3, 1]]))), [1.0, 1 / np.sqrt(5)], rtol=1e-6)


def test_novelty_global_scope_shares_counts_across_envs_and_episodes():
    term = Novelty(scope="global")
    state = np.array([[7], [7]])
    np.testing.assert_allclose(term(tr(2, next_obs=state)), [1.0, 1 / np.sqrt(2)], rtol=1e-6)
    term.reset(np.array([0, 1]))  # episode ends do not matter
    np.testing.assert_allclose(term(tr(2, next_obs=state)), [1 / np.sqrt(3), 0.5], rtol=1e-6)


def test_novelty_episode_scope_counts_per_env_and_resets():
    term = Novelty(scope="episode")
    state = np.array([[7], [7]])
    np.testing.assert_allclose(term(tr(2, next_obs=state)), [1.0, 1.0], rtol=1e-6)  # separate counts per env
    np.testing.assert_allclose(term(tr(2, next_obs=state)), [1 / np.sqrt(2)] * 2, rtol=1e-6)
    term.reset(np.array([1]))  # only env 1 starts a new episode
    np.testing.assert_allclose(term(tr(2, next_obs=state)), [1 / np.sqrt(3), 1.0], rtol=1e-6)
    # env_ids, not row numbers, identify the env: row 0 here is env 1.
    np.testing.assert_allclose(term(tr(1, next_obs=state[:1], env_ids=[1])), [1 / np.sqrt(2)], rtol=1e-6)


def test_novelty_from_info_key_and_dict_obs():
    term = Novelty(key="agent_pos")
    info = {"agent_pos": np.array([[1, 2], [1, 2], [2, 1]])}
    np.testing.assert_allclose(term(tr(3, info=info)), [1.0, 1 / np.sqrt(2), 1.0], rtol=1e-6)

    term = Novelty()
    obs = {"a": np.array([[1.0], [1.0]], np.float32), "b": np.array([[0], [5]], np.int64)}
    np.testing.assert_allclose(term(tr(2, next_obs=obs)), [1.0, 1.0])  # differ only in "b"
    np.testing.assert_allclose(term(tr(2, next_obs=obs)), [1 / np.sqrt(2)] * 2, rtol=1e-6)


def test_novelty_errors():
    with pytest.raises(InvalidArgument, match="novelty scope must be 'global' or 'episode', got 'run'"):
        Novelty(scope="run")
    with pytest.raises(InvalidArgument, match=r"novelty key 'agent_pos' is not in info \(keys: \['message'\]\)"):
        Novelty(key="agent_pos")(tr(1, info={"message": objs("hi")}))
    with pytest.raises(ConfigError, match="reward term 'novelty': novelty scope must be"):
        build_stack([{"name": "novelty", "params": {"scope": "lifetime"}}])


# -- message ----------------------------------------------------------------------------------


def test_message_event_pays_once_per_episode_and_reset_rearms():
    term = MessageEvent(text=["key", "door"], reward=2.5)
    term.bind(2)
    info = {"message": objs("You see here a key.", "The door opens.")}
    np.testing.assert_array_equal(term(tr(2, info=info)), [2.5, 2.5])
    np.testing.assert_array_equal(term(tr(2, info=info)), [0.0, 0.0])
    term.reset(np.array([1]))
    np.testing.assert_array_equal(term(tr(2, info=info)), [0.0, 2.5])
    np.testing.assert_array_equal(term(tr(2, info={"message": objs("", "It's a wall.")})), [0.0, 0.0])


def test_message_event_repeatable_pays_every_time():
    term = MessageEvent(text="wall", repeatable=True)
    info = {"message": objs("It's a wall.", "")}
    for _ in range(3):
        np.testing.assert_array_equal(term(tr(2, info=info)), [1.0, 0.0])


@pytest.mark.parametrize("text", ["", [], ["ok", ""], 3])
def test_message_event_bad_text(text):
    with pytest.raises(InvalidArgument, match="message text must be a non-empty string or list of strings"):
        MessageEvent(text=text)


def test_event_needs_its_info_key_and_finite_reward():
    with pytest.raises(InvalidArgument, match=r"event term 'message' needs info\['message'\], which this env "
                                              r"does not provide \(info keys: agent_pos\)"):
        MessageEvent(text="x")(tr(1, info={"agent_pos": np.zeros((1, 2)), "_agent_pos": np.ones(1, bool)}))
    with pytest.raises(InvalidArgument, match="event reward must be finite, got nan"):
        MessageEvent(text="x", reward=float("nan"))


# -- reach ------------------------------------------------------------------------------------


def test_reach_pos_once_per_episode():
    term = ReachEvent(pos=[3, 4])
    term.bind(2)
    at = {"agent_pos": np.array([[3, 4], [4, 3]])}
    np.testing.assert_array_equal(term(tr(2, info=at)), [1.0, 0.0])
    np.testing.assert_array_equal(term(tr(2, info=at)), [0.0, 0.0])
    term.reset(np.array([0]))
    np.testing.assert_array_equal(term(tr(2, info=at)), [1.0, 0.0])


def grid(*marks, h=3, w=5):
    chars = np.full((h, w), ord("."), np.uint8)
    for (x, y), c in marks:
        chars[y, x] = ord(c)
    return chars


def test_reach_char_uses_cells_that_showed_the_char_before():
    term = ReachEvent(char=">", repeatable=True)
    term.bind(1)
    reset_chars = grid(((4, 2), ">"), ((0, 0), "@"))
    term.observe_reset(None, {"chars": reset_chars[None]}, np.arange(1))

    def at(x, y, *marks):
        return {"agent_pos": np.array([[x, y]]), "chars": grid(((x, y), "@"), *marks)[None]}

    np.testing.assert_array_equal(term(tr(1, info=at(1, 1, ((4, 2), ">")))), [0.0])
    # A dead monster's corpse now covers the stairs: still the cell that showed '>' before.
    np.testing.assert_array_equal(term(tr(1, info=at(2, 1, ((4, 2), "%")))), [0.0])
    np.testing.assert_array_equal(term(tr(1, info=at(4, 2))), [1.0])  # '@' stands on the stairs now
    # A new episode forgets the old map: the same cell pays nothing without a '>' on it.
    term.reset(np.arange(1))
    term.observe_reset(None, {"chars": grid(((0, 0), "@"))[None]}, np.arange(1))
    np.testing.assert_array_equal(term(tr(1, info=at(4, 2))), [0.0])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "reach needs exactly one of 'pos'"),
        ({"pos": [1, 1], "char": ">"}, "reach needs exactly one of 'pos'"),
        ({"pos": [1, 2, 3]}, r"reach pos must be \[x, y\], got \[1, 2, 3\]"),
        ({"char": ">>"}, "reach char must be one character, got '>>'"),
    ],
)
def test_reach_bad_arguments(kwargs, message):
    with pytest.raises(InvalidArgument, match=message):
        ReachEvent(**kwargs)
    with pytest.raises(ConfigError, match="reward term 'reach': " + message):
        build_stack([{"name": "reach", "params": kwargs}])


# -- pickup -----------------------------------------------------------------------------------


def test_pickup_pays_when_the_item_appears_not_when_held_from_the_start():
    term = PickupEvent(item="key")
    term.bind(2)
    term.observe_reset(None, {"inventory": objs("a - a dagger", "a - a dagger\nk - a key")}, np.arange(2))
    inv = {"inventory": objs("a - a dagger\nk - a skeleton key", "a - a dagger\nk - a key")}
    np.testing.assert_array_equal(term(tr(2, info=inv)), [1.0, 0.0])  # env 1 had it at reset
    np.testing.assert_array_equal(term(tr(2, info=inv)), [0.0, 0.0])


def test_pickup_once_per_episode_unless_repeatable():
    once, again = PickupEvent(item="key"), PickupEvent(item="key", repeatable=True, reward=0.5)
    for term in (once, again):
        term.bind(1)
        term.observe_reset(None, {"inventory": objs("")}, np.arange(1))
    sequence = ["k - a key", "", "k - a key"]  # pick up, drop, pick up again
    got = {t: [float(t(tr(1, info={"inventory": objs(s)}))[0]) for s in sequence] for t in (once, again)}
    assert got[once] == [1.0, 0.0, 0.0]
    assert got[again] == [0.5, 0.0, 0.5]
    once.reset(np.arange(1))
    once.observe_reset(None, {"inventory": objs("")}, np.arange(1))
    assert float(once(tr(1, info={"inventory": objs("k - a key")}))[0]) == 1.0


@pytest.mark.parametrize("item", ["", None, 3])
def test_pickup_bad_item(item):
    with pytest.raises(InvalidArgument, match="pickup item must be a non-empty string"):
        PickupEvent(item=item)


def test_event_terms_in_a_stack_with_weights():
    stack = RewardStack([MessageEvent(text="key"), StepPenalty(0.1)], weights=[3.0, 1.0])
    stack.bind(2)
    total, parts = stack(tr(2, info={"message": objs("a key", "nothing")}))
    np.testing.assert_array_equal(parts["message"], [3.0, 0.0])
    np.testing.assert_allclose(total, [2.9, -0.1], rtol=1e-6)
