"""Log keys, in one place (CleanRL/SB3 namespaces), all plotted against ``global_step``, and
``episode_metrics``: finished episodes (``EpisodeRecord``) as values under those keys."""

from __future__ import annotations

import numpy as np

TRUE_RETURN = "charts/true_return"
SHAPED_RETURN = "charts/shaped_return"
SUCCESS_RATE = "charts/success_rate"
EPISODE_LENGTH = "charts/episode_length"
SPS = "charts/SPS"
EVAL_TRUE_RETURN = "eval/true_return"
EVAL_SUCCESS_RATE = "eval/success_rate"
EVAL_EPISODE_LENGTH = "eval/episode_length"
TERM_PREFIX = "reward_terms/"


def episode_metrics(episodes: list) -> dict[str, float]:
    """Means over finished episodes: true/shaped return, length, success rate, per-term sums."""
    if not episodes:
        return {}
    out = {
        TRUE_RETURN: float(np.mean([e.true_return for e in episodes])),
        SHAPED_RETURN: float(np.mean([e.shaped_return for e in episodes])),
        EPISODE_LENGTH: float(np.mean([e.length for e in episodes])),
    }
    succ = [e.success for e in episodes if e.success is not None]
    if succ:
        out[SUCCESS_RATE] = float(np.mean(succ))
    for name in episodes[0].terms:
        out[TERM_PREFIX + name] = float(np.mean([e.terms[name] for e in episodes]))
    return out
