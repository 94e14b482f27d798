"""Gymnasium's and Stable-Baselines3's env checkers on every registered env id, render check included.

For each id (or those starting with the given prefixes) it builds ``rewardlab.make(id,
render_mode="rgb_array")`` when the env advertises that mode (else the env's default), runs
``gymnasium.utils.env_checker.check_env`` (which also rebuilds the env in every advertised
render mode and renders it) and ``stable_baselines3.common.env_checker.check_env``, and prints
one line per id: ``ok`` or the first failure, with the time taken. Exit status 1 when any id
fails. Headless: nothing opens a window (``human`` modes of text envs print to a buffer).

    python scripts/check_env_ids.py                 # every id
    python scripts/check_env_ids.py minihack/ toy/  # the ids with these prefixes
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import time
import warnings

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # pygame-drawn envs stay headless
os.environ.setdefault("MUJOCO_GL", "egl")


def check(env_id: str) -> tuple[str, str | None]:
    """``(render mode used, None)`` when both checkers pass, else ``(mode, 'ErrorType: message')``."""
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    import rewardlab

    mode = None
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            env = rewardlab.make(env_id)
            if "rgb_array" in env.metadata.get("render_modes", []):
                env.close()
                mode = "rgb_array"
                env = rewardlab.make(env_id, render_mode=mode)
            else:
                mode = env.render_mode
            check_env(env)
            sb3_check_env(env)
            env.close()
    except Exception as e:  # noqa: BLE001 - the report names every failure
        return str(mode), f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
    return str(mode), None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("prefixes", nargs="*", help="check only the ids starting with one of these")
    args = parser.parse_args(argv)
    from rewardlab.envs import env_names

    ids = [i for i in env_names() if not args.prefixes or i.startswith(tuple(args.prefixes))]
    failed = 0
    for env_id in ids:
        t0 = time.time()
        mode, error = check(env_id)
        failed += error is not None
        print(f"{env_id:45s} render={mode:10s} {time.time() - t0:6.1f}s  {error or 'ok'}", flush=True)
    print(f"{len(ids) - failed}/{len(ids)} ids pass both checkers")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
