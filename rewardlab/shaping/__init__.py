"""Reward terms, one module per method. Importing this package registers the built-in terms.

- ``basic``: ``env`` (task reward), ``step_penalty``, ``novelty`` (count bonus, 1/√n decay)
- ``potential``: ``potential`` (potential-based shaping, Ng et al. 1999) and named potentials
- ``events``: ``message``, ``reach``, ``pickup`` (MiniHack-style events as terms)
"""

from rewardlab.shaping import basic, events, potential  # noqa: F401  (registers terms)
