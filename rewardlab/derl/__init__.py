"""DERL's outer loop: meta-evolved reward programs (Differentiable Evolutionary RL, sized for CPU).

An outer loop (it trains policies), so it lives above ``experiment``; the reward term it
evolves, ``derl_program``, and the program grammar live in ``rewardlab.shaping.derl_program``,
and the ``derl:`` section of an experiment file in ``rewardlab.config.derl``.

- ``search``: the meta-optimizers over the grammar — ``GrpoSearch`` (a token policy trained
  with group-relative policy gradient), ``RandomSearch``, ``EvolutionSearch`` and
  ``LLMSearch`` (any object with ``complete(prompts) -> texts``); imports torch;
- ``loop``: ``run_derl`` — rounds × K candidates, each an ordinary ``run_experiment`` in a
  worker process, scored by validation success on the unshaped env, logged and resumable;
- ``report``: the tables ``rewardlab run`` prints for a DERL experiment.

Importing this package imports nothing heavy; import the submodules.
"""
