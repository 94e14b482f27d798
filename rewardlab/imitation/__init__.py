"""Imitation learning on Brax (needs the ``robotics`` extra).

- ``ild``: imitation through differentiable physics (the ``ild`` agent);
- ``bc``: behaviour cloning from the same demonstrations, and ``PolicyEvaluator`` (ILD vs BC);
- ``experts``: the PPO expert trainer (Brax's own PPO) that produces the demonstrations.
"""
