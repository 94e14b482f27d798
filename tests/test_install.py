"""The README's set-up commands stay true: a fast first install, then everything for the tests.

`make install` (extra `quickstart`) must not pull the packages that build from source, and
`.ci/run` must run the README's own install and test commands.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
BUILDS_FROM_SOURCE = ("llama-cpp-python", "alfworld")


def _requirements(extra: str) -> list[str]:
    """Every requirement of an extra, self-references (`rewardlab[a,b]`) expanded."""
    out: list[str] = []
    for req in EXTRAS[extra]:
        nested = re.fullmatch(r"rewardlab\[(.+)\]", req)
        if nested:
            for name in nested.group(1).split(","):
                out += _requirements(name.strip())
        else:
            out.append(req)
    return out


def _readme_commands() -> list[str]:
    block = re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    return [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]


def test_quickstart_installs_no_source_build_and_all_includes_it():
    quick = _requirements("quickstart")
    assert not [r for r in quick if r.startswith(BUILDS_FROM_SOURCE)]
    # the README's default experiment (jax_ppo on MiniGrid) and the MiniHack examples
    assert {"torch==2.13.0", "minihack==1.0.2", "rliable==1.2.0", "jax==0.10.2", "xminigrid==0.9.3"} <= set(quick)
    everything = set(_requirements("all"))
    assert set(quick) <= everything
    assert {"llama-cpp-python[server]==0.3.36", "alfworld==0.4.2"} <= everything


def test_readme_set_up_is_install_run_test_and_ci_runs_it():
    install, run, test = _readme_commands()[:3]
    assert install == "make install"
    assert run.startswith(".venv/bin/rewardlab run experiments/") and (ROOT / run.split()[-1]).is_file()
    assert test == "make install-all && .venv/bin/pytest"
    ci = (ROOT / ".ci/run").read_text()
    assert "\nmake install " in ci and "\nmake install-all\n" in ci and "\n.venv/bin/pytest\n" in ci
    makefile = (ROOT / "Makefile").read_text()
    assert '-e ".[quickstart]"' in makefile and '-e ".[all]"' in makefile
