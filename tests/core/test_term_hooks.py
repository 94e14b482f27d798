"""The learnable-term contract: hooks declared on ``rewardlab.core.Term``, what a class uses
(``agent_hooks``), misspelt hooks refused at class definition, plain-protocol terms."""

from __future__ import annotations

import numpy as np
import pytest

from rewardlab.core.stack import RewardStack
from rewardlab.core.terms import AGENT_HOOKS, STACK_HOOKS, Term, term_agent_hooks
from rewardlab.errors import InvalidArgument


class Plain:
    """A plain ``RewardTerm`` (name/reset/__call__ only), not a ``Term``."""

    name = "plain"

    def reset(self, env_ids):
        pass

    def __call__(self, t):
        return np.zeros(t.num_envs, np.float32)


def test_every_agent_hook_is_declared_on_term_with_a_docstring():
    for hook in (*AGENT_HOOKS, *STACK_HOOKS, "load_state_dict"):
        assert getattr(Term, hook).__doc__, hook
    assert Term.agent_hooks() == frozenset()
    assert list(AGENT_HOOKS) == ["update", "extra_advantages", "discount", "bind_agent", "state_dict"]


def test_agent_hooks_are_the_overridden_ones_inherited_included():
    class Learns(Term):
        def update(self, rollout):
            return {}

        @property
        def discount(self):
            return 0.9

    class Child(Learns):
        def state_dict(self):
            return {}

        def load_state_dict(self, state):
            pass

    assert Learns.agent_hooks() == {"update", "discount"}
    assert Child.agent_hooks() == {"update", "discount", "state_dict"}
    assert Child.required_agent_hooks({}) == Child.agent_hooks()
    assert term_agent_hooks(Child()) == Child.agent_hooks()


@pytest.mark.parametrize(("attr", "hook"), [
    ("updte", "update"), ("updates", "update"), ("extra_advantage", "extra_advantages"),
    ("discont", "discount"), ("bind_agnet", "bind_agent"), ("state_dic", "state_dict"),
    ("observe_rest", "observe_reset"), ("rest", "reset"),
])
def test_a_misspelt_hook_is_an_error_at_class_definition(attr, hook):
    with pytest.raises(TypeError, match=rf"Bad\.{attr} looks like a misspelt hook '{hook}'"):
        type("Bad", (Term,), {attr: lambda self, *a: None})


def test_a_near_miss_name_can_be_declared_not_a_hook_and_subclasses_inherit_that():
    class Updates(Term, not_hooks=["updates"]):
        def updates(self):
            return 1

    class Child(Updates):
        def updates(self):
            return 2

    assert Child().updates() == 2 and Child.agent_hooks() == frozenset()


def test_hook_kinds_are_checked():
    with pytest.raises(TypeError, match="discount must be a property or a value"):
        type("Bad", (Term,), {"discount": lambda self: 0.9})
    with pytest.raises(TypeError, match="update must be a method"):
        type("Bad", (Term,), {"update": None})
    with pytest.raises(TypeError, match="override both, or neither"):
        type("Bad", (Term,), {"state_dict": lambda self: {}})


def test_discount_set_per_instance_needs_a_class_declaration():
    class Undeclared(Term):
        pass

    with pytest.raises(AttributeError, match="does not declare the discount hook"):
        Undeclared().discount = 0.5

    class Declared(Term):
        discount = None

    term = Declared()
    term.discount = 0.5
    assert term.discount == 0.5 and "discount" in Declared.agent_hooks()


def test_plain_protocol_terms_keep_working_and_a_plain_hook_is_refused():
    stack = RewardStack([Plain()])
    assert stack.learnable_terms == [] and term_agent_hooks(Plain()) == frozenset()

    class PlainLearner(Plain):
        def update(self, rollout):
            return {}

    with pytest.raises(InvalidArgument, match="defines update but is not a rewardlab.core.Term"):
        term_agent_hooks(PlainLearner())


def test_builtin_learnable_terms_declare_their_hooks():
    from rewardlab.shaping.barfi import BARFIReward
    from rewardlab.shaping.calm import CALMReward
    from rewardlab.shaping.oni import ONIReward

    assert BARFIReward.agent_hooks() == {"update", "discount", "bind_agent", "state_dict"}
    assert ONIReward.agent_hooks() == {"update"}
    # ONI's update retrains the learned variants' reward models; for lookup it only reports counters.
    assert ONIReward.required_agent_hooks({"variant": "classifier"}) == {"update"}
    assert ONIReward.required_agent_hooks({"variant": "ranking"}) == {"update"}
    assert ONIReward.required_agent_hooks({"variant": "classifier", "asynchronous": False}) == frozenset()
    assert ONIReward.required_agent_hooks({}) == frozenset()
    assert CALMReward.agent_hooks() == {"update"} and CALMReward.required_agent_hooks({}) == frozenset()
