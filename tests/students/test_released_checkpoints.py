"""Released checkpoints in one call: FROSTER, Open-VCLIP, ViFi-CLIP and X-CLIP files as their authors ship them.

Every file here is written in its real layout from tiny QuickGELU CLIPs (the released models all
start from OpenAI's CLIP): FROSTER's per-epoch and weight-averaged files, Open-VCLIP's averaged
file (evaluated patched), ViFi-CLIP's and X-CLIP's training checkpoints with the yacs config they
pickle beside the weights.
"""
from __future__ import annotations

import sys
import types
from typing import Optional

import pytest
import torch
import torch.nn as nn

from froster import ResidualDistiller, build_student
from froster.adapters.checkpoints import IMAGENET_PIXEL_MEAN, IMAGENET_PIXEL_STD, load_student_checkpoint
from froster.adapters.xclip_checkpoint import save_xclip_checkpoint
from froster.clip_activation import QUICK_GELU, ActivationMismatchError, model_activation
from froster.clip_loading import create_open_clip
from froster.teachers import OpenCLIPTeacher
from froster.testing import TINY_CLIP_NAME, synthetic_video, tiny_clip_overrides, tiny_prompts, write_openai_archive

T = 2
TINY = tiny_clip_overrides()


def _clip(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return create_open_clip(TINY_CLIP_NAME, activation=QUICK_GELU, **TINY)[0].eval()


@pytest.fixture(scope="module")
def openai_clip(tmp_path_factory):
    """The CLIP the released models started from, as OpenAI's archive: (model, path)."""
    clip = _clip(seed=0)
    path = tmp_path_factory.mktemp("openai") / "ViT-B-16.pt"
    write_openai_archive(path, clip, create_open_clip(TINY_CLIP_NAME, **TINY)[1])
    return clip, str(path)


@pytest.fixture
def yacs(monkeypatch):
    """``yacs.config.CfgNode`` as the released files pickle it (a dict subclass with attributes)."""

    class CfgNode(dict):
        def __init__(self, init=None):
            super().__init__(init or {})
            self.__dict__["__immutable__"] = True

        def __setstate__(self, state):  # never called: the file is read as inert data
            raise AssertionError("yacs code ran while loading a checkpoint")

    module = types.ModuleType("yacs.config")
    CfgNode.__module__, CfgNode.__qualname__ = "yacs.config", "CfgNode"
    module.CfgNode = CfgNode
    monkeypatch.setitem(sys.modules, "yacs", types.ModuleType("yacs"))
    monkeypatch.setitem(sys.modules, "yacs.config", module)
    return CfgNode


def _features(student: nn.Module, tokenizer) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        return student.encode_video(synthetic_video(2, T)), student.encode_text(tokenizer(tiny_prompts()))


def _assert_same(student: nn.Module, reference: nn.Module) -> None:
    for got, expected in zip(_features(student.eval(), student.tokenizer), _features(reference.eval(), student.tokenizer)):
        torch.testing.assert_close(got, expected)


# -- FROSTER and Open-VCLIP ------------------------------------------------------------------------


def _froster_model_state(tuned: nn.Module, teacher: Optional[nn.Module], with_projectors: bool = True) -> dict[str, torch.Tensor]:
    state = {f"model.{k}": v for k, v in tuned.state_dict().items()}
    state.update({f"model.{k}": torch.tensor(v) for k, v in (("input_resolution", 32), ("context_length", 16), ("vocab_size", 49408))})
    if teacher is not None:
        state.update({f"raw_model.{k}": v for k, v in teacher.state_dict().items()})
    if with_projectors:
        for side in ("v", "t"):
            state[f"projector_{side}.0.weight"] = torch.randn(32, 32)
            state[f"projector_{side}.2.weight"] = torch.randn(32, 32)
    return state


@pytest.mark.parametrize("kind", ["epoch", "averaged"])
def test_froster_file_builds_the_evaluated_model_and_gives_its_projectors(openai_clip, kind):
    tuned = _clip(seed=3)
    if kind == "epoch":  # what every epoch writes: student, teacher copy, projectors, optimizer, config
        state = _froster_model_state(tuned, openai_clip[0])
        payload = {"epoch": 22, "model_state": state, "optimizer_state": {"state": {}, "param_groups": []},
                   "cfg": "MODEL:\n  ARCH: vitb16\n", "scaler_state": {"scale": 65536.0}}
    else:  # the released, weight-averaged file
        state = _froster_model_state(tuned, None)
        payload = {"model_state": state}
    path = openai_clip[1] + f".{kind}.pyth"
    torch.save(payload, path)

    student = build_student("vclip", clip=TINY_CLIP_NAME, checkpoint=path, num_frames=T, **TINY)  # ViT-B-16: GELU by name
    assert model_activation(student) == QUICK_GELU
    _assert_same(student, build_student("vclip", clip=tuned, num_frames=T))
    report = student.checkpoint_report
    assert report.layout == "froster" and not report.patched
    assert all(k.startswith("raw_model.") or k.endswith(("input_resolution", "context_length", "vocab_size")) for k in report.ignored)

    teacher = OpenCLIPTeacher.from_pretrained(TINY_CLIP_NAME, openai_clip[1], **TINY)
    distiller = ResidualDistiller(student, teacher)
    distiller.load_projectors(report)
    torch.testing.assert_close(distiller.video_projector.fc1.weight, state["projector_v.0.weight"])
    torch.testing.assert_close(distiller.text_projector.fc2.weight, state["projector_t.2.weight"])


def test_open_vclip_file_is_patched_against_the_clip_it_started_from(openai_clip):
    clip, clip_path = openai_clip
    tuned = _clip(seed=4)
    path = clip_path + ".openvclip.pth"
    torch.save({"model_state": _froster_model_state(tuned, None, with_projectors=False)}, path)

    student = build_student("vclip", clip=TINY_CLIP_NAME, pretrained=clip_path, checkpoint=path, patch_ratio=0.5, num_frames=T, **TINY)
    # Written out: every CLIP weight is the midpoint of the file's and OpenAI's.
    expected = {k: 0.5 * v + 0.5 * clip.state_dict()[k] for k, v in tuned.state_dict().items()}
    for key, value in expected.items():
        torch.testing.assert_close(student.state_dict()[key], value, msg=key)
    assert len(student.checkpoint_report.patched) == len(expected)
    with pytest.raises(ValueError, match="no projector weights"):
        ResidualDistiller(student, OpenCLIPTeacher.from_pretrained(TINY_CLIP_NAME, clip_path, **TINY)).load_projectors(
            student.checkpoint_report
        )


def test_patching_needs_the_original_clip(openai_clip):
    path = openai_clip[1] + ".openvclip2.pth"
    torch.save({"model_state": _froster_model_state(_clip(seed=4), None, with_projectors=False)}, path)
    with pytest.raises(ValueError, match="pretrained='openai'"):
        build_student("vclip", clip=TINY_CLIP_NAME, checkpoint=path, patch_ratio=0.5, num_frames=T, **TINY)
    with pytest.raises(ValueError, match="checkpoint="):
        build_student("vclip", clip=TINY_CLIP_NAME, patch_ratio=0.5, num_frames=T, **TINY)


def test_released_layouts_refuse_a_gelu_student(openai_clip):
    path = openai_clip[1] + ".froster-gelu.pyth"
    torch.save({"model_state": _froster_model_state(_clip(seed=3), None)}, path)
    with pytest.raises(ActivationMismatchError, match="quick_gelu"):
        build_student("vclip", clip=TINY_CLIP_NAME, checkpoint=path, activation="gelu", num_frames=T, **TINY)
    gelu_student = build_student("vclip", clip=TINY_CLIP_NAME, num_frames=T, **TINY)
    with pytest.raises(ActivationMismatchError, match="froster checkpoint"):
        load_student_checkpoint(gelu_student, path)


# -- ViFi-CLIP ---------------------------------------------------------------------------------------


def _vificlip_file(path, tuned: nn.Module, base: nn.Module, CfgNode, extra=None, class_names=("juggling", "surfing", "archery")) -> None:
    """ViFi-CLIP's checkpoint: keys under ``module.``, no token embedding, its embedded fixed prompts."""
    tokenizer = create_open_clip(TINY_CLIP_NAME, **TINY)[1]
    state = {}
    for key, value in tuned.state_dict().items():
        if key.startswith("visual."):
            state["module.image_encoder." + key[len("visual."):]] = value
        elif key == "logit_scale":
            state["module.logit_scale"] = value
        elif key != "token_embedding.weight":
            state["module.text_encoder." + key] = value
    with torch.no_grad():  # the prompts, embedded once with the frozen CLIP token table
        tokens = tokenizer([f"a photo of a {name}." for name in class_names])
        state["module.prompt_learner.complete_text_embeddings"] = base.token_embedding(tokens)  # (K, L, W)
    state.update(extra or {})
    config = CfgNode({"DATA": CfgNode({"NUM_FRAMES": 8}), "TRAINER": CfgNode({"VIFI_CLIP": CfgNode({"PROMPT_MODEL": False})})})
    torch.save({"model": state, "optimizer": {"state": {}, "param_groups": []}, "lr_scheduler": {"last_epoch": 10},
                "max_accuracy": 83.2, "epoch": 10, "config": config}, path)


def test_vificlip_file_loads_safely_with_imagenet_normalisation(openai_clip, yacs, tmp_path):
    clip, clip_path = openai_clip
    tuned = _clip(seed=5)
    tuned.token_embedding.weight.data.copy_(clip.token_embedding.weight)  # frozen in ViFi-CLIP
    _vificlip_file(tmp_path / "vifi.pth", tuned, clip, yacs)

    student = build_student("vificlip", clip=TINY_CLIP_NAME, pretrained=clip_path, checkpoint=tmp_path / "vifi.pth", num_frames=T, **TINY)
    report = student.checkpoint_report
    assert report.layout == "vificlip" and report.kept == ["token_embedding.weight"]
    assert report.ignored == ["prompt_learner.complete_text_embeddings"]
    assert (student.pixel_mean, student.pixel_std) == (IMAGENET_PIXEL_MEAN, IMAGENET_PIXEL_STD)
    _assert_same(student, build_student("vificlip", clip=tuned, num_frames=T))


def test_vificlip_file_refuses_a_student_without_openai_token_embedding(yacs, tmp_path):
    base = _clip(seed=0)
    _vificlip_file(tmp_path / "vifi.pth", _clip(seed=5), base, yacs)
    with pytest.raises(ValueError, match=r"carries no token embedding.*pretrained='openai'"):
        build_student("vificlip", clip=TINY_CLIP_NAME, checkpoint=tmp_path / "vifi.pth", num_frames=T, **TINY)  # random CLIP


def test_vificlip_learned_prompt_vectors_are_unexpected(openai_clip, yacs, tmp_path):
    clip, clip_path = openai_clip
    _vificlip_file(tmp_path / "vifi-ctx.pth", clip, clip, yacs, extra={"module.prompt_learner.ctx": torch.randn(4, 64)})
    with pytest.raises(ValueError, match="prompt_learner.ctx"):
        build_student("vificlip", clip=TINY_CLIP_NAME, pretrained=clip_path, checkpoint=tmp_path / "vifi-ctx.pth", num_frames=T, **TINY)


class Unknown:
    """An object only a trusted unpickling may rebuild."""


def test_files_pickling_other_objects_still_need_weights_only_false(tmp_path):
    torch.save({"model_state": _froster_model_state(_clip(seed=3), None), "extra": Unknown()}, tmp_path / "odd.pyth")
    with pytest.raises(ValueError, match="weights_only=False"):
        build_student("vclip", clip=TINY_CLIP_NAME, checkpoint=tmp_path / "odd.pyth", num_frames=T, **TINY)
    student = build_student("vclip", clip=TINY_CLIP_NAME, checkpoint=tmp_path / "odd.pyth", weights_only=False, num_frames=T, **TINY)
    assert student.checkpoint_report.layout == "froster"


# -- X-CLIP ------------------------------------------------------------------------------------------


def test_xclip_file_gives_frames_and_activation(yacs, tmp_path):
    torch.manual_seed(6)
    source = build_student("xclip", clip=TINY_CLIP_NAME, activation=QUICK_GELU, num_frames=3, **TINY).eval()
    save_xclip_checkpoint(source, tmp_path / "xclip.pth")
    payload = torch.load(tmp_path / "xclip.pth", weights_only=True)
    payload.update({"optimizer": {}, "lr_scheduler": {}, "epoch": 30, "max_accuracy": 80.4,
                    "config": yacs({"DATA": yacs({"NUM_FRAMES": 3}), "MODEL": yacs({"FIX_TEXT": True})})})
    torch.save(payload, tmp_path / "xclip.pth")

    student = build_student("xclip", clip=TINY_CLIP_NAME, checkpoint=tmp_path / "xclip.pth", **TINY)
    assert student.num_frames == 3 and model_activation(student) == QUICK_GELU
    assert (student.pixel_mean, student.pixel_std) == (IMAGENET_PIXEL_MEAN, IMAGENET_PIXEL_STD)
    with torch.no_grad():
        video, tokens = synthetic_video(2, 3), source.tokenizer(tiny_prompts())
        torch.testing.assert_close(student.encode_video(video), source.encode_video(video))
        torch.testing.assert_close(student.encode_text(tokens), source.encode_text(tokens))
