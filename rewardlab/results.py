"""``rewardlab.results``: the public name of the results API (``rewardlab.experiment.results``).

Load run directories, align seeds on one step grid, and aggregate final evaluations and learning
curves with the interquartile mean, stratified-bootstrap 95% CIs and the probability of
improvement (rliable). ``import rewardlab`` does not import this module; rliable is imported only
when a statistic is computed. See docs/results.md.
"""

from rewardlab.experiment.results import *  # noqa: F403
from rewardlab.experiment.results import __all__  # noqa: F401
