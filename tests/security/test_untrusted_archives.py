"""A hostile TorchScript archive runs nothing, through every path that loads weights, unless ``trust_code=True``.

The archive's ``__setstate__`` creates a marker file when ``torch.jit.load`` opens it. Each
loading path is tried twice: by default the marker never appears (the restricted reader refuses
the archive, naming ``trust_code``); with the path's own ``trust_code=True`` switch it does, which
shows both that the archive really is hostile and that the switch reaches ``torch.jit.load``.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Callable

import pytest

from froster import build_student, list_students
from froster.adapters.checkpoints import load_student_checkpoint, read_checkpoint
from froster.adapters.xclip_checkpoint import load_xclip_checkpoint
from froster.clip_loading import create_open_clip, read_state_dict
from froster.teachers import OpenCLIPTeacher
from froster.testing import TINY_CLIP_NAME, tiny_build_kwargs, tiny_clip_overrides
from froster.torchscript_archive import TorchScriptArchiveError
from tests.security.archives import HOSTILE_KINDS, write_hostile_archive
from tests.security.conftest import tiny_run_overrides

TINY = tiny_clip_overrides()


def _train(role: str):
    """``froster train`` with ``<role>.pretrained`` set to the archive (and ``<role>.trust_code``)."""

    def load(path: Path, trust_code: bool, context: dict) -> int:
        from froster.cli import main

        out = context["tmp_path"] / "run"
        overrides = tiny_run_overrides(context["videos"], out, f"{role}.pretrained={path}", f"{role}.trust_code={str(trust_code).lower()}")
        return main(["train", "--config", "tiny_synthetic", *overrides])

    return load


LOADERS: dict[str, Callable[[Path, bool, dict], object]] = {
    "read_state_dict": lambda path, trust, _: read_state_dict(path, trust_code=trust),
    "read_state_dict weights_only=False": lambda path, trust, _: read_state_dict(path, weights_only=False, trust_code=trust),
    "read_checkpoint": lambda path, trust, _: read_checkpoint(path, trust_code=trust),
    "create_open_clip": lambda path, trust, _: create_open_clip(TINY_CLIP_NAME, path, trust_code=trust, **TINY),
    "OpenCLIPTeacher.from_pretrained": lambda path, trust, _: OpenCLIPTeacher.from_pretrained(TINY_CLIP_NAME, path, trust_code=trust, **TINY),
    "build_student(checkpoint=)": lambda path, trust, _: build_student("vclip", checkpoint=path, **tiny_build_kwargs("vclip", trust_code=trust)),
    "load_student_checkpoint": lambda path, trust, _: load_student_checkpoint(build_student("vclip", **tiny_build_kwargs("vclip")), path, trust_code=trust),
    "load_xclip_checkpoint": lambda path, trust, _: load_xclip_checkpoint(build_student("xclip", **tiny_build_kwargs("xclip")), path, trust_code=trust),
    "froster train student.pretrained": _train("student"),
    "froster train teacher.pretrained": _train("teacher"),
}
for _name in list_students():  # build_student(pretrained=...) of every registered student
    LOADERS[f"build_student({_name!r}, pretrained=)"] = (
        lambda path, trust, _, name=_name: build_student(name, **tiny_build_kwargs(name, pretrained=path, trust_code=trust))
    )


@pytest.fixture
def context(tmp_path, security_videos) -> dict:
    return {"tmp_path": tmp_path, "videos": security_videos}


@pytest.mark.parametrize("kind", HOSTILE_KINDS)
@pytest.mark.parametrize("path_name", sorted(LOADERS))
def test_hostile_archive_runs_nothing_by_default(path_name, kind, context, tmp_path, capsys):
    marker = tmp_path / "marker"
    archive = write_hostile_archive(tmp_path / "ViT-B-16.pt", marker, kind)
    if path_name.startswith("froster train"):
        # The command refuses: an exit status with the message, or the error itself.
        try:
            status = LOADERS[path_name](archive, False, context)
            message = capsys.readouterr().err
        except TorchScriptArchiveError as error:
            status, message = "raised", str(error)
        assert status != 0 and "trust_code=True" in message
        assert not (tmp_path / "run" / "checkpoints").exists(), "no run starts from weights that could not be read"
    else:
        with pytest.raises(TorchScriptArchiveError, match="trust_code=True"):
            LOADERS[path_name](archive, False, context)
    assert not marker.exists(), f"{path_name} ran the archive's code"


@pytest.mark.parametrize("path_name", sorted(LOADERS))
def test_trust_code_reaches_torch_jit_load(path_name, context, tmp_path):
    marker = tmp_path / "marker"
    archive = write_hostile_archive(tmp_path / "ViT-B-16.pt", marker)
    # The archive's keys fit no CLIP, so most paths fail after loading it: what matters here is
    # that its code ran, i.e. that the switch reached torch.jit.load.
    with contextlib.suppress(ValueError):
        LOADERS[path_name](archive, True, context)
    assert marker.exists(), f"trust_code=True did not reach torch.jit.load through {path_name}"
