"""Grouped worker processes for vector envs: ``k`` processes, each stepping a ``SyncVectorEnv`` of ``n/k`` copies.

Gymnasium's ``AsyncVectorEnv`` runs one process per copy and pays a pipe round trip per copy per
step; with 8 NetHack copies on 2 cores that costs more than the parallel steps save
(docs/benchmarks.md). :class:`WorkerVectorEnv` starts one process per usable core instead. Each
owns a ``SyncVectorEnv`` of its share of the copies (``n`` need not divide evenly: the first
``n % k`` workers take one more), and a step is one message per worker: the actions in; the
observations, rewards, terminations, truncations and infos of its copies out, as NumPy arrays.
The main process concatenates the groups in order, so the result is what ``SyncVectorEnv`` over
all ``n`` copies returns: same autoreset (each group runs it), same ``final_obs``/``final_info``,
same info arrays and masks, same seeds (``reset(seed=s)`` gives copy ``i`` the seed ``s + i``).
Reward shaping stays above, in the main process (``ShapedVectorEnv``, via
``rewardlab.make_vec(..., vectorization_mode="workers")``).

A worker that raises, or dies, ends the vector env: the error names the worker, its process id,
its copies and the command, with the worker's traceback; every worker is then stopped and
reaped (no zombie processes). ``close()`` asks each worker to close its copies and joins it.

>>> import gymnasium as gym
>>> venv = WorkerVectorEnv([lambda: gym.make("CartPole-v1")] * 3, workers=2, autoreset_mode="SameStep")
>>> venv.group_sizes
(2, 1)
>>> obs, info = venv.reset(seed=0)
>>> obs.shape, venv.step(np.array([0, 1, 0]))[1]
((3, 4), array([1., 1., 1.]))
>>> venv.close()
"""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import signal
import traceback
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import cloudpickle
import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, SyncVectorEnv, VectorEnv
from gymnasium.vector.utils import batch_space

from rewardlab.core.threads import usable_core_ids, usable_cores
from rewardlab.errors import InvalidArgument

__all__ = ["WorkerVectorEnv", "WorkerError", "split_sizes", "usable_cores", "worker_cores"]

_ARRAY_SPACES = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)


class WorkerError(RuntimeError):
    """A worker process of a :class:`WorkerVectorEnv` raised or died; the vector env is closed."""


def split_sizes(num_envs: int, workers: int) -> tuple[int, ...]:
    """How many copies each worker steps: as even as possible, the first ``num_envs % workers`` one more.

    >>> split_sizes(8, 2), split_sizes(7, 3), split_sizes(2, 4)
    ((4, 4), (3, 2, 2), (1, 1))
    """
    k = min(workers, num_envs)
    return tuple(num_envs // k + (i < num_envs % k) for i in range(k))


# -- the wire format ----------------------------------------------------------------------
# Pickling a NumPy array goes through its __reduce__ (~15 µs per array here, whatever its size),
# and a MiniHack group's step reply holds ~15 of them (infos and their masks). Plain arrays travel
# as (tag, dtype, shape, bytearray) and object arrays as (tag, shape, items): half the cost.
_ND, _OBJ = "\x00rewardlab-ndarray", "\x00rewardlab-objarray"


def _encode(x: Any) -> Any:
    t = type(x)
    if t is np.ndarray:
        if x.dtype.hasobject:
            return (_OBJ, x.shape, [_encode(v) for v in x.ravel().tolist()])
        if x.dtype.fields is None:
            return (_ND, x.dtype.str, x.shape, bytearray(x.tobytes()))
        return x  # structured dtypes: pickled as they are
    if t is dict:
        return {k: _encode(v) for k, v in x.items()}
    if t is tuple:
        return tuple(_encode(v) for v in x)
    if t is list:
        return [_encode(v) for v in x]
    return x


def _decode(x: Any) -> Any:
    t = type(x)
    if t is tuple:
        if len(x) == 4 and type(x[0]) is str and x[0] == _ND:
            return np.frombuffer(x[3], dtype=x[1]).reshape(x[2])  # writable: a bytearray's memory
        if len(x) == 3 and type(x[0]) is str and x[0] == _OBJ:
            array = np.empty(len(x[2]), dtype=object)
            for i, v in enumerate(x[2]):  # one by one: a list of equal arrays would broadcast
                array[i] = _decode(v)
            return array.reshape(x[1])
        return tuple(_decode(v) for v in x)
    if t is dict:
        return {k: _decode(v) for k, v in x.items()}
    if t is list:
        return [_decode(v) for v in x]
    return x


def _put(conn: Any, msg: tuple[str, Any]) -> None:
    conn.send_bytes(pickle.dumps(_encode(msg), protocol=pickle.HIGHEST_PROTOCOL))


def _put_any(conn: Any, msg: tuple[str, Any]) -> None:
    """For messages that may hold functions (``call`` arguments, ``set_attr`` values)."""
    conn.send_bytes(cloudpickle.dumps(_encode(msg), protocol=pickle.HIGHEST_PROTOCOL))


def _get(conn: Any) -> tuple[str, Any]:
    return _decode(pickle.loads(conn.recv_bytes()))


# -- the worker process --------------------------------------------------------------------
def _serve(venv: SyncVectorEnv, cmd: str, data: Any) -> Any:
    """Run one command on a group's ``SyncVectorEnv`` (in a worker, or in the main process for ``inline``)."""
    if cmd == "step":
        return venv.step(data)
    if cmd == "reset":
        return venv.reset(**data)
    if cmd == "call":
        name, args, kwargs = data
        return venv.call(name, *args, **kwargs)
    if cmd == "set_attr":
        return venv.set_attr(*data)
    raise ValueError(f"unknown command {cmd!r}")


def _hello(venv: SyncVectorEnv) -> dict[str, Any]:
    return {"obs_space": venv.single_observation_space, "act_space": venv.single_action_space,
            "metadata": venv.metadata, "render_mode": venv.render_mode}


def _worker(payload: bytes, autoreset_mode: AutoresetMode, conn: Any, inherited: list[Any],
            core: int | None = None) -> None:
    """Build the group's ``SyncVectorEnv`` and serve commands until ``close`` (or the parent goes away)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle; it closes us
    if core is not None:
        _pin(core)
    for other in inherited:  # the main process's pipe ends, inherited through fork: held here, a pipe
        other.close()        # would not report the main process's (or another worker's) death
    venv = None
    try:
        env_fns = cloudpickle.loads(payload)
        venv = SyncVectorEnv(env_fns, copy=False, autoreset_mode=autoreset_mode)
        _put_any(conn, ("ok", _hello(venv)))
        while True:
            try:
                cmd, data = _get(conn)
            except (EOFError, OSError):  # the main process is gone
                return
            if cmd == "close":
                venv.close()
                venv = None
                _put(conn, ("ok", None))
                return
            reply = ("ok", _serve(venv, cmd, data))
            try:
                _put(conn, reply)  # encoded now, so copy=False buffers are safe
            except (pickle.PicklingError, TypeError, AttributeError):
                _put_any(conn, reply)  # e.g. a call() result holding a function
    except BaseException as e:  # noqa: BLE001  (reported to the main process, which raises)
        try:
            _put(conn, ("error", (f"{type(e).__name__}: {e}", traceback.format_exc())))
        except (OSError, ValueError):
            pass
    finally:
        if venv is not None:
            try:
                venv.close()
            except Exception:  # noqa: BLE001  (already failing; the first error is the one reported)
                pass
        conn.close()


def _pin(core: int) -> None:
    """Keep this process on ``core`` (best effort: not every platform lets a process choose)."""
    try:
        os.sched_setaffinity(0, {core})
    except (AttributeError, OSError):
        pass


def worker_cores(groups: int, inline: bool) -> list[int | None]:
    """The core each group's worker is pinned to (``None``: not pinned; the inline group is never).

    A pipe write tends to wake its reader on the writer's core (Linux's "sync" wake-up), so workers
    woken by the main process's messages can pile onto one core and take turns there instead of
    stepping in parallel; pinned, they do not (on this 2-core machine pinning was worth 2-7% of
    env steps/s, docs/benchmarks.md). Groups are pinned only when there is one per usable core (the
    default): then every core gets one, even when several such envs run at once. With fewer groups
    (two one-worker envs would both land on the first core) or more, none is pinned and the
    scheduler spreads them.
    """
    cores = usable_core_ids()
    if cores is None or groups != len(cores):
        return [None] * groups
    return [None if inline and i == 0 else cores[i] for i in range(groups)]


def _pinned_cores(pin: bool | Sequence[int], groups: int, inline: bool) -> list[int | None]:
    """``WorkerVectorEnv``'s ``pin`` argument as one core (or ``None``) per group."""
    if isinstance(pin, bool):
        return worker_cores(groups, inline) if pin else [None] * groups
    if (isinstance(pin, (str, bytes)) or not isinstance(pin, Sequence) or not pin
            or not all(isinstance(c, int) and not isinstance(c, bool) for c in pin)):
        raise InvalidArgument(f"pin must be True, False or a non-empty list of core ids, got {pin!r}")
    usable = usable_core_ids()
    if usable is None:  # not on Linux: nothing to pin to
        return [None] * groups
    if not set(pin) <= set(usable):
        raise InvalidArgument(f"pin lists cores {sorted(set(pin) - set(usable))} this process may not use "
                              f"(usable: {usable})")
    return [None if inline and i == 0 else pin[i % len(pin)] for i in range(groups)]


class _MainGroup:
    """The group the main process steps itself (``inline``): a pipe end and a process in one object.

    ``send`` keeps the command; ``recv`` runs it. ``WorkerVectorEnv`` sends to every worker first and
    then receives in group order, so this group steps while the workers step theirs.
    """

    def __init__(self, env_fns: list[Callable[[], gym.Env]], autoreset_mode: AutoresetMode):
        self.venv = SyncVectorEnv(env_fns, copy=True, autoreset_mode=autoreset_mode)
        self.pid = os.getpid()
        self.exitcode = None
        self.error: BaseException | None = None
        self._pending: tuple[str, Any] = ("start", None)

    def send(self, msg: tuple[str, Any]) -> None:
        self._pending = msg

    def recv(self) -> tuple[str, Any]:
        cmd, data = self._pending
        try:
            return "ok", (_hello(self.venv) if cmd == "start" else _serve(self.venv, cmd, data))
        except Exception as e:  # noqa: BLE001  (raised by WorkerVectorEnv._fail, with this as its cause)
            self.error = e
            return "error", (f"{type(e).__name__}: {e}", traceback.format_exc())

    def is_alive(self) -> bool:
        return False  # nothing to ask or terminate: close() closes its envs directly

    def join(self, timeout: float | None = None) -> None:
        pass

    def close(self) -> None:
        self.venv.close()


# -- batching helpers ----------------------------------------------------------------------
def _split(space: spaces.Space, batch: Any, bounds: Sequence[tuple[int, int]]) -> list[Any]:
    """One slice of a batched value (actions) per worker, following the space's batch layout."""
    if isinstance(space, spaces.Dict):
        per_key = {k: _split(s, batch[k], bounds) for k, s in space.spaces.items()}
        return [{k: v[j] for k, v in per_key.items()} for j in range(len(bounds))]
    if isinstance(space, spaces.Tuple):
        per_part = [_split(s, batch[i], bounds) for i, s in enumerate(space.spaces)]
        return [tuple(p[j] for p in per_part) for j in range(len(bounds))]
    if isinstance(space, _ARRAY_SPACES):
        batch = np.asarray(batch)
    else:  # Text, Graph, Sequence, ...: Gymnasium batches these as tuples
        batch = tuple(batch)
    n = bounds[-1][1]
    if len(batch) != n:
        raise InvalidArgument(f"actions must have one entry per env ({n}), got {len(batch)}")
    return [batch[a:b] for a, b in bounds]


def _concat(space: spaces.Space, batches: list[Any]) -> Any:
    """The groups' batched observations as one batch, laid out as ``SyncVectorEnv`` lays it out."""
    if len(batches) == 1:
        return batches[0]
    if isinstance(space, spaces.Dict):
        return {k: _concat(s, [b[k] for b in batches]) for k, s in space.spaces.items()}
    if isinstance(space, spaces.Tuple):
        return tuple(_concat(s, [b[i] for b in batches]) for i, s in enumerate(space.spaces))
    if isinstance(space, _ARRAY_SPACES):
        return np.concatenate(batches)
    return tuple(x for b in batches for x in b)


def _merge_info(out: dict[str, Any], info: dict[str, Any], offset: int, n: int) -> dict[str, Any]:
    """Add one group's batched info (Gymnasium's ``key``/``_key`` layout) at rows ``offset...`` of ``out``.

    Mirrors ``VectorEnv._add_info`` for the whole batch: an array takes the dtype of the first copy
    (here: the first group) that had the key; rows without the key keep the default (``None`` in
    object arrays, 0 otherwise) and a ``False`` mask.
    """
    for key, value in info.items():
        if key.startswith("_") and key[1:] in info:
            continue  # a mask, handled with its key
        mask = info.get("_" + key)
        size = len(mask) if mask is not None else len(value)
        rows = np.arange(size) if mask is None else np.flatnonzero(mask)
        if isinstance(value, dict):
            out[key] = _merge_info(out.get(key, {}), value, offset, n)
        else:
            array = out.get(key)
            if array is None:
                if value.dtype == object and value.ndim == 1:
                    array = np.full(n, None, dtype=object)
                else:
                    array = np.zeros((n, *value.shape[1:]), dtype=value.dtype)
            array[offset + rows] = value[rows]
            out[key] = array
        out_mask = out.get("_" + key)
        if out_mask is None:
            out_mask = np.zeros(n, dtype=np.bool_)
        out_mask[offset + rows] = True
        out["_" + key] = out_mask
    return out


def _merge_infos(infos: list[dict[str, Any]], offsets: list[int], n: int) -> dict[str, Any]:
    """All groups' infos as one batch: :func:`_merge_info` per group, with a fast path for a key that
    every copy has (same dtype and shape in every group): one concatenation."""
    out: dict[str, Any] = {}
    keys = dict.fromkeys(k for info in infos for k in info)
    for key in keys:
        if key.startswith("_") and key[1:] in keys:
            continue  # a mask, handled with its key
        values = [info.get(key) for info in infos]
        masks = [info.get("_" + key) for info in infos]
        v0 = values[0]
        if (type(v0) is np.ndarray and all(type(v) is np.ndarray and v.dtype == v0.dtype
                                            and v.shape[1:] == v0.shape[1:] for v in values)
                and all(m is not None and m.all() for m in masks)):
            out[key] = np.concatenate(values)
            out["_" + key] = np.ones(n, dtype=np.bool_)
            continue
        for value, mask, offset in zip(values, masks, offsets, strict=True):
            if value is not None:
                _merge_info(out, {key: value} if mask is None else {key: value, "_" + key: mask}, offset, n)
    return out


# -- the vector env ------------------------------------------------------------------------
class WorkerVectorEnv(VectorEnv):
    """``num_envs`` copies stepped by ``workers`` processes, each owning a ``SyncVectorEnv`` of its share.

    Args:
        env_fns: one callable per copy that makes the env (pickled with cloudpickle, so lambdas work).
        workers: groups of copies, each stepped by its own process (default: the cores this process
            may use), at most one per copy.
        inline: the main process steps the first group itself while the workers step theirs (it
            would only wait otherwise), so ``workers=k`` starts ``k - 1`` processes.
        autoreset_mode: as ``SyncVectorEnv`` (an ``AutoresetMode`` or its value); default ``NEXT_STEP``.
        context: ``multiprocessing`` start method (``"fork"``, ``"spawn"``, ``"forkserver"``);
            default: the platform's.
        daemon: workers are daemon processes (ended with the main process).
        pin: pin worker ``i`` to the ``i``-th usable core when there is one group per usable core
            (see :func:`worker_cores`), or to ``pin[i % len(pin)]`` given a list of core ids;
            ``False``: let the scheduler place them. The main process is never pinned.

    Raises:
        InvalidArgument: no env functions, or ``workers`` not an integer >= 1.
        WorkerError: a worker failed to build its copies (the message has its traceback).
    """

    def __init__(self, env_fns: Sequence[Callable[[], gym.Env]], *, workers: int | None = None,
                 inline: bool = False, autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
                 context: str | None = None, daemon: bool = True, pin: bool | Sequence[int] = True):
        self._procs: list[Any] = []
        self._conns: list[Any] = []
        self.closed = False
        self._stepping = False  # a step_async awaits its step_wait
        env_fns = list(env_fns)
        if not env_fns:
            raise InvalidArgument("env_fns must hold at least one env function, got none")
        if workers is None:
            workers = usable_cores()
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
            raise InvalidArgument(f"workers must be an integer >= 1 (or None: one per usable core), got {workers!r}")
        self.autoreset_mode = (autoreset_mode if isinstance(autoreset_mode, AutoresetMode)
                               else AutoresetMode(autoreset_mode))
        self.num_envs = len(env_fns)
        self.inline = inline
        self.group_sizes = split_sizes(self.num_envs, workers)
        ends = np.cumsum(self.group_sizes)
        self._bounds = [(int(e - s), int(e)) for s, e in zip(self.group_sizes, ends, strict=True)]
        ctx = mp.get_context(context)
        forked = ctx.get_start_method() == "fork"
        cores = _pinned_cores(pin, len(self._bounds), inline)
        for i, (a, b) in enumerate(self._bounds):
            if inline and i == 0:
                local = _MainGroup(env_fns[a:b], self.autoreset_mode)
                self._procs.append(local)
                self._conns.append(local)
                continue
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker, name=f"rewardlab-vec-worker-{i}", daemon=daemon,
                               args=(cloudpickle.dumps(env_fns[a:b]), self.autoreset_mode, child,
                                     [*self._pipes(), parent] if forked else [], cores[i]))
            proc.start()
            child.close()
            self._procs.append(proc)
            self._conns.append(parent)
        hello = self._gather("start")
        first = hello[0]
        self.single_observation_space = first["obs_space"]
        self.single_action_space = first["act_space"]
        for i, h in enumerate(hello[1:], 1):
            if h["obs_space"] != first["obs_space"] or h["act_space"] != first["act_space"]:
                self.close(terminate=True)
                raise InvalidArgument(f"worker {i}'s copies have other spaces than worker 0's: observation "
                                      f"{h['obs_space']} vs {first['obs_space']}, action {h['act_space']} vs "
                                      f"{first['act_space']}")
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.metadata = dict(first["metadata"])
        self.metadata["autoreset_mode"] = self.autoreset_mode
        self.render_mode = first["render_mode"]
        self._last_obs: list[Any] = [None] * len(self._bounds)

    @property
    def processes(self) -> list[Any]:
        """The worker processes (``multiprocessing.Process``), in group order (not the main process)."""
        return [p for p in self._procs if not isinstance(p, _MainGroup)]

    def _pipes(self) -> list[Any]:
        return [c for c in self._conns if not isinstance(c, _MainGroup)]

    # -- messaging ---------------------------------------------------------------------------
    def _describe(self, i: int) -> str:
        a, b = self._bounds[i]
        copies = f"env {a}" if b - a == 1 else f"envs {a}-{b - 1}"
        if isinstance(self._procs[i], _MainGroup):
            return f"group {i} (in the main process, pid {self._procs[i].pid}, {copies})"
        return f"worker {i} (pid {self._procs[i].pid}, {copies})"

    def _fail(self, i: int, cmd: str, what: str, detail: str = "") -> NoReturn:
        """Stop every worker (reaping them) and raise the error naming worker ``i``."""
        proc = self._procs[i]
        proc.join(timeout=1.0)
        code = f", exit code {proc.exitcode}" if proc.exitcode is not None else ""
        label = self._describe(i)
        cause = getattr(proc, "error", None)
        self.close(terminate=True)
        raise WorkerError(f"{label} {what} during {cmd!r}{code}; the vector env is closed{detail}") from cause

    def _send(self, i: int, msg: tuple[str, Any]) -> None:
        conn = self._conns[i]
        try:
            if isinstance(conn, _MainGroup):
                conn.send(msg)
            elif msg[0] in ("call", "set_attr"):
                _put_any(conn, msg)
            else:
                _put(conn, msg)
        except (BrokenPipeError, ConnectionResetError, EOFError, OSError):
            self._fail(i, msg[0], "died")

    def _recv(self, i: int, cmd: str) -> Any:
        conn = self._conns[i]
        try:
            status, data = conn.recv() if isinstance(conn, _MainGroup) else _get(conn)
        except (EOFError, ConnectionResetError, OSError):
            self._fail(i, cmd, "died")
        if status != "ok":
            message, tb = data
            self._fail(i, cmd, f"raised {message}", f"\n--- worker traceback ---\n{tb}")
        return data

    def _gather(self, cmd: str) -> list[Any]:
        return [self._recv(i, cmd) for i in range(len(self._conns))]

    def _check_open(self, cmd: str | None = None) -> None:
        if self.closed:
            raise WorkerError("the WorkerVectorEnv is closed (close() was called or a worker failed)")
        if cmd is not None and self._stepping:  # the workers' next replies are the pending step's
            raise InvalidArgument(f"{cmd} while a step_async awaits its step_wait: call step_wait first")

    # -- Gymnasium VectorEnv API -------------------------------------------------------------
    def reset(self, *, seed: int | list[int | None] | None = None,
              options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Reset every copy (``seed=s`` gives copy ``i`` the seed ``s + i``, as ``SyncVectorEnv``).

        ``options={"reset_mask": mask}`` (autoreset ``DISABLED``) resets only the masked copies;
        workers with none of them are not asked.
        """
        self._check_open("reset")
        if seed is None:
            seeds: list[int | None] = [None] * self.num_envs
        elif isinstance(seed, int):
            seeds = [seed + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise InvalidArgument(f"seed list must have one seed per env ({self.num_envs}), got {len(seeds)}")
        mask = None
        if options is not None and "reset_mask" in options:
            options = dict(options)
            mask = options.pop("reset_mask")
            if not (isinstance(mask, np.ndarray) and mask.shape == (self.num_envs,) and mask.dtype == np.bool_
                    and mask.any()):
                raise InvalidArgument(f"options['reset_mask'] must be a bool array of shape ({self.num_envs},) "
                                      f"with at least one True, got {mask!r}")
        asked = []
        for i, (a, b) in enumerate(self._bounds):
            group_options = options
            if mask is not None:
                if not mask[a:b].any():
                    continue
                group_options = {**options, "reset_mask": mask[a:b].copy()}
            self._send(i, ("reset", {"seed": seeds[a:b], "options": group_options}))
            asked.append(i)
        group_infos = []
        for i in asked:
            self._last_obs[i], info = self._recv(i, "reset")
            group_infos.append(info)
        infos = _merge_infos(group_infos, [self._bounds[i][0] for i in asked], self.num_envs)
        return _concat(self.single_observation_space, list(self._last_obs)), infos

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every copy: one message to each worker, then one reply from each (they step in parallel)."""
        self.step_async(actions)
        return self.step_wait()

    def step_async(self, actions: Any) -> None:
        """Send every worker its share of ``actions`` and return at once (as ``AsyncVectorEnv.step_async``):
        the caller works while the copies step, then collects the step with :meth:`step_wait`."""
        self._check_open("step_async")
        parts = _split(self.action_space, actions, self._bounds)
        for i, part in enumerate(parts):
            self._send(i, ("step", part))
        self._stepping = True

    def step_wait(self) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """The step sent by :meth:`step_async`, as :meth:`step` returns it."""
        self._check_open()
        if not self._stepping:
            raise InvalidArgument("step_wait called without a pending step_async")
        self._stepping = False
        results = self._gather("step")
        for i, result in enumerate(results):
            self._last_obs[i] = result[0]
        infos = _merge_infos([r[4] for r in results], [a for a, _ in self._bounds], self.num_envs)
        obs = _concat(self.single_observation_space, self._last_obs)
        rewards = np.concatenate([r[1] for r in results])
        terminations = np.concatenate([r[2] for r in results])
        truncations = np.concatenate([r[3] for r in results])
        return obs, rewards, terminations, truncations, infos

    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        """Call a method (or read an attribute) of every copy, through its wrappers; results in env order."""
        self._check_open("call")
        for i in range(len(self._conns)):
            self._send(i, ("call", (name, args, kwargs)))
        return tuple(x for group in self._gather("call") for x in group)

    def get_attr(self, name: str) -> tuple[Any, ...]:
        """An attribute of every copy, in env order."""
        return self.call(name)

    def set_attr(self, name: str, values: list[Any] | tuple[Any, ...] | Any) -> None:
        """Set an attribute of every copy: one value for all, or a list/tuple of one per copy."""
        self._check_open("set_attr")
        if not isinstance(values, (list, tuple)):
            values = [values] * self.num_envs
        if len(values) != self.num_envs:
            raise InvalidArgument(f"set_attr needs one value per env ({self.num_envs}), got {len(values)}")
        for i, (a, b) in enumerate(self._bounds):
            self._send(i, ("set_attr", (name, list(values[a:b]))))
        self._gather("set_attr")

    def render(self) -> tuple[Any, ...] | None:
        """Each copy's frame, in env order (as ``SyncVectorEnv.render``)."""
        return self.call("render")

    @property
    def np_random_seed(self) -> tuple[int, ...]:
        return self.get_attr("np_random_seed")

    @property
    def np_random(self) -> tuple[np.random.Generator, ...]:
        return self.get_attr("np_random")

    def close_extras(self, timeout: float = 5.0, terminate: bool = False, **kwargs: Any) -> None:
        """Ask each live worker to close its copies and join it; terminate those that do not end in time."""
        procs, conns = getattr(self, "_procs", []), getattr(self, "_conns", [])
        local_error = None
        for group in procs:
            if isinstance(group, _MainGroup):
                try:
                    group.close()
                except Exception as e:  # noqa: BLE001  (the workers must still end; raised below)
                    local_error = e
        procs = [p for p in procs if not isinstance(p, _MainGroup)]
        conns = [c for c in conns if not isinstance(c, _MainGroup)]
        if not terminate:
            for proc, conn in zip(procs, conns, strict=True):
                if proc.is_alive():
                    try:
                        _put(conn, ("close", None))
                    except (BrokenPipeError, ConnectionResetError, OSError):
                        pass
            for proc, conn in zip(procs, conns, strict=True):
                try:
                    if conn.poll(timeout):
                        conn.recv_bytes()
                except (EOFError, ConnectionResetError, OSError):
                    pass
                proc.join(timeout)
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
        for proc in procs:
            proc.join(timeout)
            if proc.is_alive():  # ignored SIGTERM
                proc.kill()
                proc.join()
        for conn in conns:
            conn.close()
        if local_error is not None and not terminate:
            raise local_error

    def close(self, **kwargs: Any) -> None:
        """Close every worker (idempotent); ``terminate=True`` skips the polite close."""
        if self.closed:
            return
        self.closed = True
        self.close_extras(**kwargs)

    def __del__(self) -> None:
        if not getattr(self, "closed", True):
            self.close(terminate=True)

    def __repr__(self) -> str:
        return f"WorkerVectorEnv(num_envs={self.num_envs}, workers={len(self.group_sizes)}, inline={self.inline})"
