"""The pure-JAX path: JAX envs, JAX reward terms and a vmapped PPO (``jax_ppo``).

- ``envs``: ``gymnax/<id>`` and ``minigrid/<id>`` (xminigrid) behind one functional interface,
  with Gymnasium adapters so numpy terms, our torch PPO and SB3 run on them too;
- ``terms``: reward terms in JAX, built from the same YAML specs as the numpy ones, with their
  numeric parameters (weights, scales) as traced arguments, so reward variants can be vmapped;
- ``potentials``: potentials for the ``potential`` term (MiniGrid distances to key, door, goal),
  in JAX and as numpy twins;
- ``rollout``: a vector of JAX envs with the reward terms applied and episode statistics kept on
  device (true return, shaped return, per-term sums, length, success);
- ``config``: ``JaxPPOConfig``, the typed ``agent.params`` of ``jax_ppo`` (no jax import);
- ``ppo``: ``make_train`` — a whole PPO run as one pure function, vmapped over seeds and reward
  variants — and ``JaxPPOTrainer``, what ``rewardlab run`` drives for ``agent: jax_ppo``.

- ``devices``: batched runs split over the devices (one CPU device per core, see there).

Nothing is imported here: ``import rewardlab.jax.config`` does not import jax. Importing the
package asks XLA for one host device per core (``devices.request_host_devices``), which must
happen before JAX starts its CPU backend. See ``docs/jax.md``.
"""

from rewardlab.jax.devices import request_host_devices

request_host_devices()
