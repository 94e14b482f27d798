"""Reward terms, one module per method. Built-in terms are declared in ``manifest.py`` and
imported on first use (``rewardlab.core.TERMS.get(name)``); importing this package imports none.

- ``basic``: ``env`` (task reward), ``step_penalty``, ``novelty`` (count bonus, 1/√n decay),
  ``info_signal`` / ``info_component`` (values the env reports in ``info``)
- ``potential``: ``potential`` (potential-based shaping, Ng et al. 1999) and named potentials
- ``events``: ``message``, ``reach``, ``pickup`` (MiniHack-style events as terms)
- ``derl_program``: ``derl_program`` (a DERL reward program over named primitive terms) and its grammar
- ``reach``: ``reach_distance``, ``ctrl_cost`` and the potential ``robotics/reach_distance`` (continuous control)
- ``gated``: the G-RA gate; ``verpo``: ``verpo`` (difficulty-weighted partial test reward)
- ``barfi``, ``calm``, ``oni``, ``auxiliary``: learned (BARFI, ONI) and LLM-judged (CALM) terms, auxiliary terms

``rewardlab list terms`` prints the full list from the registry.
"""
