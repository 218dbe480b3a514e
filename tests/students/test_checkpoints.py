"""Checkpoint layouts, written from tiny CLIPs, load into students and reproduce their outputs."""
from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn as nn
from safetensors.torch import save_file

from froster.adapters.checkpoints import detect_layout, load_student_checkpoint
from froster.adapters.vclip import VCLIP
from froster.adapters.vificlip import ViFiCLIP
from froster.clip_loading import create_open_clip, read_state_dict
from froster.registry import list_students
from froster.testing import TINY_CLIP_NAME, synthetic_video, tiny_clip_overrides, tiny_prompts

from .conftest import build_tiny

T = 2


def _tiny_clip(seed: int, activation: str = "quick_gelu", **overrides) -> nn.Module:
    # QuickGELU: every released layout was fine-tuned from OpenAI's CLIP.
    torch.manual_seed(seed)
    return create_open_clip(TINY_CLIP_NAME, activation=activation, **tiny_clip_overrides(**overrides))[0].eval()


def _outputs(student: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    student.eval()
    with torch.no_grad():
        return student.encode_video(synthetic_video(2, T)), student.encode_text(student.tokenizer(tiny_prompts()))


def _assert_same_outputs(student: nn.Module, reference: nn.Module) -> None:
    for actual, expected in zip(_outputs(student), _outputs(reference)):
        torch.testing.assert_close(actual, expected)


class _OpenAIArchive(nn.Module):
    """A traceable module whose state dict is CLIP's, plus the hyper-parameter entries of OpenAI's archives."""

    def __init__(self, clip: nn.Module):
        super().__init__()
        for name, child in clip.named_children():
            self.add_module(name, child)
        for name, param in clip.named_parameters(recurse=False):
            self.register_parameter(name, param)
        self.register_buffer("input_resolution", torch.tensor(32))
        self.register_buffer("context_length", torch.tensor(16))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # What is traced does not matter: a traced module keeps every submodule's weights.
        return x * self.logit_scale.exp()


# Both students load through the same identity hook: one of them per file format is enough.
@pytest.mark.parametrize(
    "student_cls, file_format",
    [(VCLIP, "torch"), (ViFiCLIP, "nested-ddp"), (ViFiCLIP, "safetensors"), (VCLIP, "torchscript")],
)
def test_clip_layouts_load_and_reproduce(tmp_path, student_cls, file_format):
    source = _tiny_clip(seed=1)
    state = source.state_dict()
    path = tmp_path / ("clip.safetensors" if file_format == "safetensors" else "clip.pt")
    if file_format == "torch":
        torch.save(state, path)
    elif file_format == "nested-ddp":
        torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}, path)
    elif file_format == "safetensors":
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated; OpenAI's archives still exist
            traced = torch.jit.trace(_OpenAIArchive(_tiny_clip(seed=1)), torch.zeros(2))
            torch.jit.save(traced, str(path))

    student = student_cls(_tiny_clip(seed=2), num_frames=T)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        report = load_student_checkpoint(student, path)
    assert report.layout == "clip" and not report.missing and not report.unexpected
    _assert_same_outputs(student, student_cls(source, num_frames=T))


def _froster_state(student_clip: nn.Module, teacher_clip: nn.Module, dim: int) -> dict[str, torch.Tensor]:
    state = {f"model.{k}": v for k, v in student_clip.state_dict().items()}
    state.update({f"raw_model.{k}": v for k, v in teacher_clip.state_dict().items()})
    for side in ("v", "t"):
        state[f"projector_{side}.0.weight"] = torch.randn(dim, dim)
        state[f"projector_{side}.2.weight"] = torch.randn(dim, dim)
    return state


def test_froster_checkpoint_loads_student_and_returns_projectors(tmp_path):
    from froster import ResidualDistiller
    from froster.teachers import OpenCLIPTeacher

    source = _tiny_clip(seed=1)
    state = _froster_state(source, _tiny_clip(seed=5), dim=32)
    path = tmp_path / "froster.pyth"
    torch.save({"epoch": 22, "model_state": state, "optimizer_state": {}, "cfg": "MODEL:\n  ARCH: vitb16\n"}, path)

    student = VCLIP(_tiny_clip(seed=2), num_frames=T)
    report = load_student_checkpoint(student, path)
    assert report.layout == "froster"
    assert report.ignored and all(k.startswith("raw_model.") for k in report.ignored)
    _assert_same_outputs(student, VCLIP(source, num_frames=T))

    teacher = OpenCLIPTeacher.from_pretrained(TINY_CLIP_NAME, pretrained=None, **tiny_clip_overrides())
    distiller = ResidualDistiller(student, teacher, alpha=0.1, beta=2.0, kind="cosine")
    distiller.load_state_dict(report.projector_state, strict=False)
    torch.testing.assert_close(distiller.video_projector.fc1.weight, state["projector_v.0.weight"])
    torch.testing.assert_close(distiller.text_projector.fc2.weight, state["projector_t.2.weight"])


def test_open_vclip_checkpoint_without_projectors(tmp_path):
    source = _tiny_clip(seed=1)
    torch.save({f"model.{k}": v for k, v in source.state_dict().items()}, tmp_path / "openvclip.pth")
    student = VCLIP(_tiny_clip(seed=2), num_frames=T)
    report = load_student_checkpoint(student, tmp_path / "openvclip.pth")
    assert report.layout == "froster" and report.projector_state == {}
    _assert_same_outputs(student, VCLIP(source, num_frames=T))


def test_wrong_architecture_names_keys_and_shapes(tmp_path):
    torch.save(_tiny_clip(seed=1, width=96).state_dict(), tmp_path / "wide.pt")
    student = VCLIP(_tiny_clip(seed=2), num_frames=T)
    before = student.visual.conv1.weight.clone()
    with pytest.raises(ValueError, match=r"shape mismatch.*visual\.\S+ \(.*96"):
        load_student_checkpoint(student, tmp_path / "wide.pt", strict=False)
    assert torch.equal(student.visual.conv1.weight, before), "nothing may load when refused"

    state = _tiny_clip(seed=1).state_dict()
    del state["visual.proj"]
    torch.save(state, tmp_path / "partial.pt")
    with pytest.raises(ValueError, match=r"1 missing: visual\.proj"):
        load_student_checkpoint(student, tmp_path / "partial.pt")
    assert load_student_checkpoint(student, tmp_path / "partial.pt", strict=False).missing == ["visual.proj"]


def test_layout_detection():
    clip_keys = {k: torch.zeros(1) for k in ("visual.conv1.weight", "logit_scale")}
    assert detect_layout(clip_keys) == "clip"
    assert detect_layout({f"model.{k}": v for k, v in clip_keys.items()}) == "froster"
    assert detect_layout({"model.image_encoder.conv1.weight": torch.zeros(1)}) == "vificlip"
    assert detect_layout({"image_encoder.conv1.weight": torch.zeros(1)}) == "vificlip"
    assert detect_layout({"visual.transformer.resblocks.0.message_fc.weight": torch.zeros(1)}) == "xclip"
    assert detect_layout({"prompts_generator.alpha": torch.zeros(1), "visual.proj": torch.zeros(1)}) == "xclip"
    with pytest.raises(ValueError, match="layout"):
        detect_layout({"backbone.weight": torch.zeros(1)})


def test_read_state_dict_rejects_files_without_a_state_dict(tmp_path):
    torch.save({"epoch": 1, "notes": "none"}, tmp_path / "empty.pt")
    with pytest.raises(ValueError, match="no state dict"):
        read_state_dict(tmp_path / "empty.pt")
    with pytest.raises(FileNotFoundError):
        read_state_dict(tmp_path / "absent.pt")


class _RenamingStudent(nn.Module):
    """A student that stores CLIP under another name and adds a module: the loader's two hooks."""

    def __init__(self, clip: nn.Module):
        super().__init__()
        self.inner = ViFiCLIP(clip, num_frames=T)
        self.extra = nn.Linear(2, 2)

    @property
    def logit_scale(self) -> torch.Tensor:
        return self.inner.logit_scale

    def clip_state_dict_key(self, clip_key: str):
        return "inner." + clip_key

    def non_clip_state_keys(self):
        return ["extra.weight", "extra.bias"]


def test_student_hooks_rename_keys_and_declare_new_modules(tmp_path):
    source = _tiny_clip(seed=1)
    torch.save(source.state_dict(), tmp_path / "clip.pt")
    student = _RenamingStudent(_tiny_clip(seed=2))
    report = load_student_checkpoint(student, tmp_path / "clip.pt")
    assert not report.missing and not report.unexpected
    _assert_same_outputs(student.inner, ViFiCLIP(source, num_frames=T))


@pytest.mark.parametrize("name", list_students())
def test_every_student_loads_a_clip_checkpoint_weight_by_weight(tmp_path, name):
    # Every registered student is built on an open_clip CLIP and says where each CLIP weight goes.
    student = build_tiny(name, num_frames=T)
    before = {k: v.clone() for k, v in student.state_dict().items()}
    source = _tiny_clip(seed=7).state_dict()
    torch.save(source, tmp_path / "clip.pt")
    report = load_student_checkpoint(student, tmp_path / "clip.pt")
    assert not report.missing and not report.unexpected
    state = student.state_dict()
    kept = {key: student.clip_state_dict_key(key) for key in source}
    kept = {key: own for key, own in kept.items() if own is not None}
    assert kept, f"{name} keeps no CLIP weight"
    for key, own in kept.items():
        assert torch.equal(state[own], source[key]), f"{name}: {own} is not the checkpoint's {key}"
    # Only a student without CLIP's vision tower (timm_vit) leaves CLIP weights out, and only those.
    assert all(key.startswith("visual.") for key in set(source) - set(kept))
    # The student's own modules, which a CLIP checkpoint cannot hold, keep their weights.
    for key in student.non_clip_state_keys():
        assert torch.equal(state[key], before[key]), f"{name}: {key} changed"
