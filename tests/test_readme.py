"""The README's quick start is run as written, so it cannot drift from the code."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from skbnn.inference import STRATEGIES

ROOT = Path(__file__).resolve().parents[1]


def _bash_blocks(text):
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


def _demo_command():
    blocks = [b.strip() for b in _bash_blocks((ROOT / "README.md").read_text())]
    demo = [b for b in blocks if "python -m skbnn" in b]
    assert len(demo) == 1, "the README must show the demo command exactly once"
    return demo[0]


def test_readme_shows_both_quick_start_commands():
    blocks = [b.strip() for b in _bash_blocks((ROOT / "README.md").read_text())]
    assert any(b.startswith("pip install -e .") and "python -m skbnn" in b for b in blocks)
    assert any('pip install -e ".[test]"' in b and "python -m pytest" in b for b in blocks)


@pytest.mark.slow
def test_readme_demo_command_runs_as_written():
    command = _demo_command()
    # The README says "python"; run it with this interpreter so the command
    # installs into and runs in the environment the tests use.
    command = re.sub(r"\bpython\b", sys.executable, command)
    command = re.sub(r"^pip\b", f"{sys.executable} -m pip", command)
    done = subprocess.run(command, shell=True, cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    # One table row per registered strategy, with a sane accuracy on digits.
    scores = {}
    for name in [*STRATEGIES, "cnn psgld"]:
        row = re.search(rf"^{name}\s+([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)\s+([0-9.]+)", out, re.M)
        assert row, f"no demo row for {name!r} in:\n{out}"
        accuracy, nll, ece = (float(row.group(k)) for k in (1, 2, 3))
        assert accuracy >= 0.9, (name, accuracy)
        assert 0 < nll < 0.5 and 0 <= ece < 0.1, (name, nll, ece)
        scores[name] = (nll, ece)
    # the first thing a user sees: the default strategy's NLL no worse than MAP's
    # (their ECEs on 450 digits differ by less than the noise of 450 rows)
    assert scores["psgld"][0] <= scores["map"][0], out
    assert "least sure about" in out
