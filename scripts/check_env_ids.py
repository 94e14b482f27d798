"""Gymnasium's and Stable-Baselines3's env checkers on every registered env id, render check included.

For each id (or those starting with the given prefixes) it builds ``rewardlab.make(id,
render_mode="rgb_array")`` when the env advertises that mode (else the env's default), runs
``gymnasium.utils.env_checker.check_env`` (which also rebuilds the env in every advertised
render mode and renders it) and ``stable_baselines3.common.env_checker.check_env``, and prints
one line per id: ``ok`` or the first failure, with the time taken. Exit status 1 when any id
fails. Each id is checked in its own process, so an env that aborts the interpreter (a C
assertion, e.g. a window requested on a headless machine) is reported, not fatal. Headless:
``human`` modes of text envs print to a buffer; MuJoCo renders through EGL.

    python scripts/check_env_ids.py                 # every id
    python scripts/check_env_ids.py minihack/ toy/  # the ids with these prefixes
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import time
import warnings

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # pygame-drawn envs stay headless
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])


def _has_text(space) -> bool:
    import gymnasium as gym

    if isinstance(space, gym.spaces.Text):
        return True
    children = getattr(space, "spaces", None)
    children = children.values() if isinstance(children, dict) else (children or ())
    return any(_has_text(c) for c in children)


def check(env_id: str) -> tuple[str, str | None, str | None]:
    """``(render mode used, None, note)`` when the checkers pass, else ``(mode, 'ErrorType: message', None)``.

    SB3's checker is skipped (``note`` says so) for envs with Text spaces, which SB3 does not support."""
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
            if _has_text(env.observation_space) or _has_text(env.action_space):
                env.close()  # SB3 has no Text spaces: its checker does not apply (LLM-agent envs)
                return str(mode), None, "SB3 checker n/a: Text spaces"
            sb3_check_env(env)
            env.close()
    except Exception as e:  # noqa: BLE001 - the report names every failure
        return str(mode), f"{type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}", None
    return str(mode), None, None


def check_in_subprocess(env_id: str) -> tuple[str, str | None, str | None]:
    """``check(env_id)`` in a fresh interpreter; a crash is reported as the failure."""
    res = subprocess.run([sys.executable, __file__, "--one", env_id], capture_output=True, text=True)
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
    if res.returncode == 0 and lines:
        out = json.loads(lines[-1])
        return out["mode"], out["error"], out.get("note")
    tail = (res.stderr.strip().splitlines() or ["no output"])[-1][:200]
    return "?", f"process ended with status {res.returncode}: {tail}", None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("prefixes", nargs="*", help="check only the ids starting with one of these")
    parser.add_argument("--one", metavar="ID", help="check this id in this process and print the result as JSON")
    args = parser.parse_args(argv)
    if args.one:
        mode, error, note = check(args.one)
        print(json.dumps({"mode": mode, "error": error, "note": note}))
        return 0
    from rewardlab.envs import env_names

    ids = [i for i in env_names() if not args.prefixes or i.startswith(tuple(args.prefixes))]
    failed = 0
    for env_id in ids:
        t0 = time.time()
        mode, error, note = check_in_subprocess(env_id)
        failed += error is not None
        status = error or ("ok (" + note + ")" if note else "ok")
        print(f"{env_id:45s} render={mode:10s} {time.time() - t0:6.1f}s  {status}", flush=True)
    print(f"{len(ids) - failed}/{len(ids)} ids pass both checkers")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
