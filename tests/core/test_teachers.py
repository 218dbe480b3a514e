"""Teachers from open_clip names and from the weight files users have."""
from __future__ import annotations

import warnings

import pytest
import torch
from safetensors.torch import save_file

from froster.clip_loading import create_open_clip, read_state_dict
from froster.teachers import OpenCLIPTeacher
from froster.testing import TINY_CLIP_NAME, synthetic_video, tiny_clip_overrides, tiny_prompts


def _save_torchscript(model, tokenizer, path):
    # OpenAI's released CLIP weights are TorchScript archives of the traced model.
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, (torch.randn(1, 3, 32, 32), tokenizer(["a"])), strict=False, check_trace=False)
        traced.save(str(path))


@pytest.mark.parametrize("layout", ["torchscript", "state_dict", "nested_ddp", "safetensors"])
def test_teacher_loads_every_weight_layout(layout, tmp_path):
    source, tokenizer = create_open_clip(TINY_CLIP_NAME, **tiny_clip_overrides())
    state = source.state_dict()
    path = tmp_path / "weights.bin"
    if layout == "torchscript":
        path = tmp_path / "ViT-B-16.pt"
        _save_torchscript(source, tokenizer, path)
    elif layout == "state_dict":
        torch.save(state, path)
    elif layout == "nested_ddp":
        torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    else:
        path = tmp_path / "open_clip_model.safetensors"
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))

    teacher = OpenCLIPTeacher.from_pretrained(TINY_CLIP_NAME, pretrained=str(path), **tiny_clip_overrides())
    video = synthetic_video(2, 3)
    expected = source.encode_image(video.transpose(1, 2).flatten(0, 1)).reshape(2, 3, -1)
    torch.testing.assert_close(teacher.encode_frames(video), expected)
    tokens = tokenizer(tiny_prompts(4))
    torch.testing.assert_close(teacher.encode_text(tokens), source.encode_text(tokens))


def test_wrong_architecture_names_the_differing_keys(tmp_path):
    other, _ = create_open_clip(TINY_CLIP_NAME, **tiny_clip_overrides(width=96))
    torch.save(other.state_dict(), tmp_path / "wide.pt")
    with pytest.raises(ValueError, match=r"shape mismatch: .*conv1.weight \(96, 3, 16, 16\) vs model \(64, 3, 16, 16\)"):
        OpenCLIPTeacher.from_pretrained(TINY_CLIP_NAME, pretrained=str(tmp_path / "wide.pt"), **tiny_clip_overrides())
    deeper, _ = create_open_clip(TINY_CLIP_NAME, **tiny_clip_overrides(layers=3))
    torch.save(deeper.state_dict(), tmp_path / "deep.pt")
    with pytest.raises(ValueError, match=r"unexpected: .*resblocks\.2\."):
        OpenCLIPTeacher.from_pretrained(TINY_CLIP_NAME, pretrained=str(tmp_path / "deep.pt"), **tiny_clip_overrides())


def test_files_without_a_state_dict_are_explained(tmp_path):
    torch.save({"epoch": 1, "notes": {"a": 1}}, tmp_path / "odd.pt")
    with pytest.raises(ValueError, match="holds no tensors"):
        read_state_dict(tmp_path / "odd.pt")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_state_dict(tmp_path / "missing.pt")
    torch.save({"model.a": torch.zeros(1)}, tmp_path / "prefixed.pt")
    assert list(read_state_dict(tmp_path / "prefixed.pt", prefix="model.")) == ["a"]
    with pytest.raises(KeyError, match="prefix"):
        read_state_dict(tmp_path / "prefixed.pt", prefix="visual.")


def test_unknown_model_name_and_precision():
    with pytest.raises(ValueError, match="not an open_clip model name"):
        OpenCLIPTeacher.from_pretrained("ViT-Q-99")
    with pytest.raises(ValueError, match="precision must be one of"):
        OpenCLIPTeacher.from_pretrained(TINY_CLIP_NAME, precision="int8", **tiny_clip_overrides())


def test_half_precision_teacher_runs_forward_only():
    teacher = OpenCLIPTeacher.from_pretrained(TINY_CLIP_NAME, precision="bf16", **tiny_clip_overrides())
    assert teacher.dtype == torch.bfloat16
    frames = teacher.encode_frames(synthetic_video(1, 2))
    assert frames.shape == (1, 2, 32) and not frames.requires_grad
