"""`import rewardlab` stays light: no heavy family or agent library is imported."""

import subprocess
import sys

HEAVY = ("torch", "nle", "minihack", "stable_baselines3", "matplotlib", "optuna", "jax", "pydantic")


def test_import_rewardlab_imports_no_heavy_family():
    code = f"import sys, rewardlab; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_make_minihack_imports_nle_only_when_used():
    code = ("import sys, rewardlab; assert 'nle' not in sys.modules; "
            "rewardlab.make('minihack/Room-5x5').close(); print('nle' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
