"""Potential callables are called positionally: any parameter names work; a wrong arity is a clear error."""

import numpy as np
import pytest

from rewardlab.core.terms import build_stack
from rewardlab.core.transition import Transition
from rewardlab.errors import ConfigError
from rewardlab.shaping.potential import PotentialShaping, resolve_potential


def _step(term):
    term.bind(2)
    term.observe_reset(np.array([1.0, 2.0]), {}, np.arange(2))
    t = Transition(np.array([1.0, 2.0]), None, np.array([3.0, 5.0]), np.zeros(2),
                   terminated=np.array([False, False]), truncated=np.array([False, False]))
    return term(t)


@pytest.mark.parametrize("phi", [
    lambda o, i: np.asarray(o, np.float32),
    lambda state, extra=None: np.asarray(state, np.float32),
    lambda *args: np.asarray(args[0], np.float32),
])
def test_any_parameter_names(phi):
    np.testing.assert_allclose(_step(PotentialShaping(phi, gamma=0.5)), [0.5 * 3 - 1, 0.5 * 5 - 2])


def test_a_factory_is_still_called_with_its_params():
    def factory(offset: float = 0.0):
        return lambda o, i: np.asarray(o, np.float32) + offset

    np.testing.assert_allclose(_step(PotentialShaping(factory, gamma=1.0, params={"offset": 10.0})), [2.0, 3.0])
    assert resolve_potential(factory)(np.array([4.0]), None).tolist() == [4.0]


@pytest.mark.parametrize(("phi", "sig"), [(lambda o: o, r"\(o\)"), (lambda o, i, k: o, r"\(o, i, k\)")])
def test_wrong_arity_is_a_clear_error(phi, sig):
    with pytest.raises(ConfigError, match=rf"potential '<lambda>' has signature {sig}: a potential is called as "
                                          r"phi\(obs, info\) with two positional arguments"):
        PotentialShaping(phi)


def test_plain_function_by_import_path_with_other_names():
    stack = build_stack([{"name": "potential", "params": {"potential": "numpy:add", "gamma": 1.0}}])
    assert stack.names == ["potential"]
