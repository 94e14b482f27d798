"""Reward terms, one module per method. Importing this package registers the built-in terms.

- ``basic``: ``env`` (task reward), ``step_penalty``, ``novelty`` (count bonus, 1/√n decay),
  ``info_signal`` / ``info_component`` (values the env reports in ``info``)
- ``potential``: ``potential`` (potential-based shaping, Ng et al. 1999) and named potentials
- ``events``: ``message``, ``reach``, ``pickup`` (MiniHack-style events as terms)
- ``derl``: ``derl_program`` (a DERL reward program over named primitive terms)
- ``reach``: ``reach_distance`` and the
  potential ``robotics/reach_distance`` (continuous control)
- ``gated``: the G-RA gate
- ``verpo``: ``verpo`` (difficulty-weighted partial test reward)
"""

from rewardlab.shaping import basic, derl, events, gated, potential, reach, verpo  # noqa: F401  (registers terms)
