"""Every Python block of docs/tutorial.md runs, in order, in one namespace."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

TUTORIAL = Path(__file__).resolve().parent.parent / "docs" / "tutorial.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_the_tutorial_has_the_promised_sections():
    text = TUTORIAL.read_text()
    headings = ["Tabular Q-learning and SARSA", "DDPG on MovieRec-v0", "Swap in TD3 and SAC",
                "Read the evaluation table", "Exercise 1", "Exercise 2", "Exercise 3"]  # fmt: skip
    for heading in headings:
        assert heading in text
    assert len(python_blocks(text)) >= 10


def test_every_code_block_runs(real_dir, capsys):
    namespace: dict = {"__name__": "tutorial"}
    for i, block in enumerate(python_blocks(TUTORIAL.read_text())):
        try:
            exec(compile(block, f"tutorial block {i + 1}", "exec"), namespace)
        except Exception as exc:  # pragma: no cover - the message is the point
            pytest.fail(f"tutorial block {i + 1} failed: {exc!r}\n{block}")
    out = capsys.readouterr().out
    assert "Recommended" in out and "NDCG@10" in out and "q-learning" in out
