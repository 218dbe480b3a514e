"""Every Python block of README.md and docs/*.md runs, so the examples cannot drift from the code.

The blocks of one page run in order in one namespace, as a reader would paste them. open_clip is
patched for the run so that its models are small and its pretrained tags download nothing: the
examples keep their real model names, image sizes and context lengths, and every froster call in
them runs for real. A block that needs what only the reader has (a dataset on disk, a released
checkpoint, several GPUs) says so in its fence, ```python no-run: <why>, and is only compiled.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_BLOCK = re.compile(r"^```python([^\n]*)\n(.*?)^```", re.S | re.M)


def _blocks(page: Path) -> list[tuple[str, str]]:
    return [(info.strip(), code) for info, code in _BLOCK.findall(page.read_text(encoding="utf-8"))]


@pytest.fixture
def small_open_clip(monkeypatch):
    """open_clip's create_model with narrow, shallow towers and no downloads."""
    import open_clip

    create_model = open_clip.create_model

    def small(model_name, pretrained=None, **kwargs):
        # The example's own overrides win (e.g. a tiny image size); otherwise the model's
        # image size, patch size and context length, with narrow, shallow towers.
        config = open_clip.get_model_config(model_name)
        vision = {**config["vision_cfg"], "width": 64, "layers": 2, "head_width": 32, **kwargs.pop("vision_cfg", {})}
        text = {**config["text_cfg"], "width": 64, "heads": 2, "layers": 2, **kwargs.pop("text_cfg", {})}
        kwargs.setdefault("embed_dim", 32)
        kwargs.update(vision_cfg=vision, text_cfg=text)
        local = pretrained is not None and os.path.isfile(os.fspath(pretrained))
        return create_model(model_name, pretrained=pretrained if local else None, **kwargs)

    monkeypatch.setattr(open_clip, "create_model", small)


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_the_python_blocks_of_a_page_run(page, small_open_clip, tmp_path, monkeypatch):
    blocks = _blocks(page)
    if not blocks:
        pytest.skip(f"{page.name} has no Python block")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__docs__"}
    for index, (info, code) in enumerate(blocks):
        compiled = compile(code, f"{page.name} block {index + 1}", "exec")
        if info.startswith("no-run"):
            assert re.match(r"no-run: \S", info), f"{page.name} block {index + 1}: say why it cannot run (```python no-run: <why>)"
            continue
        exec(compiled, namespace)


def test_every_page_with_code_is_covered():
    # A new docs page is picked up by the glob; this pins that the pages with examples exist.
    assert any(_blocks(page) for page in PAGES)
