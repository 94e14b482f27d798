"""Optuna sweeps over reward shaping: the search space is the experiment file's ``sweep:`` section.

``rewardlab sweep FILE`` runs trials through the same runner as ``rewardlab run`` and maximises
the **unshaped** evaluation return. See ``docs/sweeps.md``.
"""

from rewardlab.sweep.space import sample

__all__ = ["sample"]
