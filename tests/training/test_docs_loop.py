"""docs/loop.md shows docs/loop_example.py verbatim, and the example runs."""
from __future__ import annotations

import math
import runpy
from pathlib import Path

import torch

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_loop_page_shows_the_example_verbatim():
    page = (DOCS / "loop.md").read_text()
    example = (DOCS / "loop_example.py").read_text()
    assert f"```python\n{example}```" in page


def test_loop_example_runs(capsys):
    namespace = runpy.run_path(str(DOCS / "loop_example.py"), run_name="__main__")
    assert math.isfinite(namespace["out"].loss.item())
    assert set(namespace["out"].losses) == {"ce_loss", "video_distill_loss", "text_distill_loss"}
    probs = namespace["probs"]
    assert probs.shape == (1, 4) and torch.allclose(probs.sum(), torch.tensor(1.0))
    assert capsys.readouterr().out.count("step ") == 4
