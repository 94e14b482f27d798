"""SARM labels, priors, the teacher-forcing switch, rewind windows, RA-BC weights, the term."""

from __future__ import annotations

import numpy as np
import pytest

from rewardlab.errors import InvalidArgument
from rewardlab.imitation.sarm import (
    breakpoints,
    frame_index_labels,
    frame_labels,
    normalized_progress,
    progress_deltas,
    rabc_weights,
    rewind_indices,
    stage_conditioning,
    stage_priors,
    stage_tau,
    weighted_bc_loss,
    window_indices,
)

NAMES = ("reach_a", "reach_b", "reach_c")
# reach_a 2..6, a gap 7, reach_b zero-length at 8, reach_c 8..12.
ANN = [("reach_a", 2, 6), ("reach_b", 8, 8), ("reach_c", 8, 12)]


@pytest.mark.parametrize(("t", "expected"), [
    (0, (0, 0.0)),          # before the first subtask
    (1, (0, 0.0)),
    (2, (0, 0.0)),          # first frame of reach_a
    (3, (0, 0.25)),         # (3 - 2) / (6 - 2)
    (6, (0, 1.0)),          # last frame of reach_a
    (7, (0, 1.0)),          # gap: previous stage, tau = 1
    (8, (1, 1.0)),          # zero-length reach_b: tau = 1 (first matching span wins)
    (9, (2, 0.25)),         # (9 - 8) / (12 - 8)
    (12, (2, 1.0)),
    (13, (2, 0.999)),       # after the last subtask
    (40, (2, 0.999)),
])
def test_stage_tau_boundary_cases(t, expected):
    k, tau = stage_tau(t, ANN, NAMES)
    assert k == expected[0]
    assert tau == pytest.approx(expected[1])


def test_stage_tau_contiguous_spans_and_missing_annotation():
    ann = [("reach_a", 0, 4), ("reach_b", 4, 10)]
    # The shared boundary frame belongs to the earlier subtask at tau = 1.
    assert stage_tau(4, ann, NAMES) == (0, 1.0)
    assert stage_tau(5, ann, NAMES) == (1, pytest.approx(1 / 6))
    assert stage_tau(3, [], NAMES) == (0, 0.0)
    with pytest.raises(InvalidArgument, match="'grasp' is not one of"):
        stage_tau(0, [("grasp", 0, 3)], NAMES)


def test_frame_labels_whole_demo():
    stages, taus = frame_labels(14, ANN, NAMES)
    assert stages.tolist() == [0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 2, 2, 2, 2]
    np.testing.assert_allclose(taus, [0, 0, 0, .25, .5, .75, 1, 1, 1, .25, .5, .75, 1, .999], atol=1e-6)
    np.testing.assert_allclose(frame_index_labels(3)[1], [0, 0.5, 1])
    assert frame_index_labels(1)[1].tolist() == [0.0]


def test_stage_priors_by_hand():
    # demo 1 spans 10 frames: a 2/10, b 3/10, c 5/10; demo 2 spans 20: a 10/20, b 5/20, c 5/20.
    ann = [(11, [("reach_a", 0, 2), ("reach_b", 2, 5), ("reach_c", 5, 10)]),
           (21, [("reach_a", 0, 10), ("reach_b", 10, 15), ("reach_c", 15, 20)])]
    alpha = stage_priors(ann, NAMES)
    np.testing.assert_allclose(alpha, [0.35, 0.275, 0.375])
    np.testing.assert_allclose(breakpoints(alpha), [0, 0.35, 0.625, 1.0])
    # A demo missing a subtask (and one with a gap) still gives priors summing to 1.
    alpha2 = stage_priors([(11, [("reach_a", 0, 5)]), (11, [("reach_a", 0, 2), ("reach_c", 6, 10)])], NAMES)
    np.testing.assert_allclose(alpha2, np.array([0.35, 0.0, 0.2]) / 0.55)
    with pytest.raises(InvalidArgument):
        stage_priors([], NAMES)


def test_normalized_progress_uses_breakpoints():
    bps = np.array([0.0, 0.35, 0.625, 1.0])
    p = normalized_progress(np.array([0, 0, 1, 2, 2]), np.array([0.0, 1.0, 0.5, 0.0, 0.999]), bps)
    np.testing.assert_allclose(p, [0.0, 0.35, 0.4875, 0.625, 0.625 + 0.999 * 0.375])


def test_teacher_forcing_switch():
    torch = pytest.importorskip("torch")
    gt = torch.tensor([0, 1, 2])
    logits = torch.tensor([[0.0, 0.0, 9.0], [9.0, 0.0, 0.0], [0.0, 9.0, 0.0]], requires_grad=True)
    # draw < 0.75: the true stages; otherwise the predicted argmax (2, 0, 1), without gradient.
    assert stage_conditioning(gt, logits, 3, draw=0.0).argmax(-1).tolist() == [0, 1, 2]
    assert stage_conditioning(gt, logits, 3, draw=0.7499).argmax(-1).tolist() == [0, 1, 2]
    pred = stage_conditioning(gt, logits, 3, draw=0.75)
    assert pred.argmax(-1).tolist() == [2, 0, 1]
    assert not pred.requires_grad
    # Over many draws the true stage is used 75% of the time.
    rng = np.random.default_rng(0)
    used_gt = [stage_conditioning(gt, logits, 3, draw=float(rng.random())).argmax(-1).tolist() == [0, 1, 2]
               for _ in range(4000)]
    assert np.mean(used_gt) == pytest.approx(0.75, abs=0.02)


def test_windows_and_rewind():
    assert window_indices(10, 4, 3) == [1, 4, 7, 10]
    assert window_indices(2, 3, 3) == [0, 0, 2]
    # Forward ... 6, 9, 12 then back 9, 6, 3: the window is the last four, labelled by frame 3.
    assert rewind_indices(12, 3, 4, 3) == ([12, 9, 6, 3], 3)
    assert rewind_indices(12, 1, 4, 3) == ([6, 9, 12, 9], 9)
    # Cannot rewind before the episode start: n is capped at t // gap.
    assert rewind_indices(4, 4, 4, 3) == ([0, 1, 4, 1], 1)


def test_progress_deltas_cap_at_episode_end():
    d = progress_deltas([np.array([0.0, 0.2, 0.5, 0.4, 0.9]), np.array([0.3])], chunk=2)
    np.testing.assert_allclose(d[0], [0.5, 0.2, 0.4, 0.5, 0.0], atol=1e-6)
    np.testing.assert_allclose(d[1], [0.0])
    with pytest.raises(InvalidArgument):
        progress_deltas([np.zeros(3)], chunk=0)


def test_rabc_weights_hand_computed():
    r = np.array([0.20, 0.05, 0.01, 0.004, 0.0, -0.001, -0.3])
    mu = max(r.mean(), 0.0)                  # -0.005286 -> 0
    sigma = r.std()                          # 0.137540...
    assert mu == 0.0
    # w~ = clip((r - (0 - 2 sigma)) / (4 sigma + 1e-6), 0, 1); r > 0.01 -> 1; r < 0 -> 0.
    soft = lambda x: min(max((x + 2 * sigma) / (4 * sigma + 1e-6), 0.0), 1.0)  # noqa: E731
    expected = [1.0, 1.0, soft(0.01), soft(0.004), soft(0.0), 0.0, 0.0]
    np.testing.assert_allclose(rabc_weights(r), expected, rtol=1e-5)
    # The same numbers written out: sigma = 0.137540, soft(0.01) = (0.01 + 0.275081) / 0.550162 = 0.518176.
    assert sigma == pytest.approx(0.1375403, rel=1e-5)
    assert rabc_weights(r)[2] == pytest.approx(0.5181755, rel=1e-5)
    assert rabc_weights(r)[4] == pytest.approx(0.4999991, rel=1e-5)
    # Dataset statistics passed in: mu = 0.1, sigma = 0.05 -> lower bound 0, w~(0.005) = 0.005 / 0.2.
    np.testing.assert_allclose(rabc_weights(np.array([0.005, 0.011, -0.01]), mu=0.1, sigma=0.05),
                               [0.025, 1.0, 0.0], rtol=1e-5)
    # sigma floored at eps = 1e-6 for all-equal deltas: w~(0) = 2e-6 / 5e-6 = 0.4.
    np.testing.assert_allclose(rabc_weights(np.zeros(3)), [0.4, 0.4, 0.4], rtol=1e-5)


def test_weighted_bc_loss_by_hand():
    torch = pytest.importorskip("torch")
    per = torch.tensor([1.0, 2.0, 4.0, 8.0])
    w = torch.tensor([1.0, 0.5, 0.0, 0.5])
    # Rescaled to sum to 4: [2, 1, 0, 1]; (2*1 + 1*2 + 0 + 1*8) / 4 = 3.
    assert float(weighted_bc_loss(per, w)) == pytest.approx(3.0, rel=1e-5)
    assert float(weighted_bc_loss(per, torch.ones(4))) == pytest.approx(per.mean().item(), rel=1e-5)


def test_sarm_term_is_a_telescoping_potential(tmp_path):
    pytest.importorskip("torch")
    from rewardlab.core.transition import Transition
    from rewardlab.envs.manipulation import make_manipulation
    from rewardlab.imitation.sarm import SARMModel, SARMReward

    term = SARMReward(demos={"clean": 2}, train_steps=30, gamma=1.0)
    term.model.save(tmp_path / "m.pt")
    dense = SARMReward(checkpoint=str(tmp_path / "m.pt"), mode="dense")
    assert isinstance(dense.model, SARMModel)
    env = make_manipulation("ReachSequence-v0", max_episode_steps=30)
    obs, info = env.reset(seed=3)
    ids = np.arange(1)
    for t in (term, dense):
        t.bind(1)
        t.observe_reset(obs[None], {}, ids)
    phi0 = float(term._phi[0])
    rng = np.random.default_rng(0)
    total, last_dense = 0.0, None
    for _ in range(12):
        a = rng.uniform(-1, 1, 2)
        nxt, _, term_flag, trunc, _ = env.step(a)
        tr = Transition(obs[None], a[None], nxt[None], np.zeros(1), np.array([term_flag]), np.array([trunc]), {}, ids)
        total += float(term(tr)[0])
        last_dense = float(dense(tr)[0])
        obs = nxt
    # gamma = 1: the shaped rewards telescope to phi(s_T) - phi(s_0); dense mode returns phi(s_T).
    assert total == pytest.approx(last_dense - phi0, abs=1e-5)
    assert 0.0 <= last_dense <= 1.0
    with pytest.raises(InvalidArgument, match="mode"):
        SARMReward(checkpoint=str(tmp_path / "m.pt"), mode="sparse")
    with pytest.raises(InvalidArgument, match="does not exist"):
        SARMReward(checkpoint=str(tmp_path / "missing.pt"))
