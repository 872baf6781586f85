"""``import recgym`` stays light: no torch, no stable-baselines3."""

from __future__ import annotations

import subprocess
import sys


def test_import_recgym_does_not_import_torch_or_sb3():
    code = (
        "import sys, recgym, recgym.data, recgym.embeddings, gymnasium as gym\n"
        "heavy = [m for m in ('torch', 'stable_baselines3') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
