"""The TorchScript reader gives what ``torch.jit.load(path).state_dict()`` gives, without running the archive.

The reference is torch itself: every archive here is written by ``torch.jit.trace``/``script`` and
``save``, and its state dict from ``torch.jit.load`` (run on files these tests wrote) is compared
with the reader's, names, order, dtypes, strides and values.
"""
from __future__ import annotations

import warnings
import zipfile
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from froster.clip_activation import QUICK_GELU
from froster.clip_loading import OPENAI_NON_WEIGHT_KEYS, create_open_clip, read_state_dict
from froster.testing import TINY_CLIP_NAME, tiny_clip_overrides, write_openai_archive
from froster.torchscript_archive import TorchScriptArchiveError, is_torchscript_archive, read_torchscript_state_dict
from tests.security.archives import add_member, replace_member, write_pickle_exploit_archive

TINY = tiny_clip_overrides()


def _jit_state_dict(path: Path) -> dict[str, torch.Tensor]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit deprecation warnings
        return dict(torch.jit.load(str(path), map_location="cpu").state_dict())


def _save_scripted(module: nn.Module, path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.script(module).save(str(path))
    return path


def _assert_same_state(ours: dict[str, torch.Tensor], reference: dict[str, torch.Tensor]) -> None:
    assert list(ours) == list(reference)
    for key, expected in reference.items():
        got = ours[key]
        assert got.dtype == expected.dtype, key
        assert got.shape == expected.shape and got.stride() == expected.stride(), key
        assert torch.equal(got, expected), key


@pytest.fixture(scope="module")
def openai_archive(tmp_path_factory):
    """A tiny QuickGELU CLIP traced and saved as OpenAI saved theirs: (clip, path)."""
    torch.manual_seed(0)
    clip, tokenizer = create_open_clip(TINY_CLIP_NAME, activation=QUICK_GELU, **TINY)
    path = tmp_path_factory.mktemp("openai") / "ViT-B-16.pt"
    write_openai_archive(path, clip.eval(), tokenizer)
    return clip, path


def test_openai_layout_archive_reads_as_torch_jit_load_gives_it(openai_archive):
    clip, path = openai_archive
    assert is_torchscript_archive(path)
    ours = read_torchscript_state_dict(path)
    _assert_same_state(ours, _jit_state_dict(path))
    assert "visual.conv1.weight" in ours and "transformer.resblocks.0.attn.in_proj_weight" in ours
    assert {k: int(ours[k]) for k in OPENAI_NON_WEIGHT_KEYS} == {"input_resolution": 32, "context_length": 16, "vocab_size": 49408}

    # read_state_dict drops the hyper-parameter entries, as it always has, and keeps every weight.
    weights = read_state_dict(path)
    assert set(weights) == set(ours) - set(OPENAI_NON_WEIGHT_KEYS)
    for key, value in clip.state_dict().items():
        assert torch.equal(weights[key], value), key


def test_openai_layout_archive_builds_the_same_clip(openai_archive):
    clip, path = openai_archive
    rebuilt, _ = create_open_clip(TINY_CLIP_NAME, path, **TINY)
    assert type(rebuilt.visual.transformer.resblocks[0].mlp.gelu).__name__ == "QuickGELU"
    for key, value in clip.state_dict().items():
        assert torch.equal(rebuilt.state_dict()[key], value), key


class _Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 4, bias=False)
        self.register_buffer("table", torch.arange(6, dtype=torch.int32).reshape(2, 3).t())  # non-contiguous
        self.plain = torch.ones(2, dtype=torch.float16)  # a tensor attribute: neither parameter nor buffer
        self.sizes = [1, 2]
        self.empty = nn.Parameter(torch.empty(0, 3, dtype=torch.bfloat16))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x) + self.plain.sum().float() + float(self.sizes[0])


class _Scripted(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList([_Block(), _Block()])
        self.tied = self.blocks[0].lin.weight
        self.heads = nn.ModuleDict({"x": nn.Linear(4, 2)})
        self.register_buffer("mask", torch.full((3, 3), float("-inf")).triu(1))
        self.norm = nn.BatchNorm1d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = x + block(x)[..., :3]
        return x


def test_scripted_module_tree_reads_as_torch_jit_load_gives_it(tmp_path):
    # Parameters, buffers, submodule lists and dicts, a tied weight, integer buffers, an empty
    # bf16 parameter; the fp16 tensor attribute is no parameter or buffer, so not in the state.
    path = _save_scripted(_Scripted(), tmp_path / "scripted.pt")
    ours = read_torchscript_state_dict(path)
    _assert_same_state(ours, _jit_state_dict(path))
    assert "blocks.0.plain" not in ours and "norm.num_batches_tracked" in ours
    assert ours["tied"].data_ptr() == ours["blocks.0.lin.weight"].data_ptr(), "one storage, as torch reads it"


_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.int64, torch.int8, torch.uint8, torch.bool)


class _Holder(nn.Module):
    pass


@st.composite
def _tensors(draw):
    """A base tensor and a view of it: a slice with a step or an offset, a transpose, or the tensor itself."""
    dtype = draw(st.sampled_from(_DTYPES))
    shape = tuple(draw(st.lists(st.integers(0, 5), min_size=0, max_size=3)))
    seed = draw(st.integers(0, 2**16))
    generator = torch.Generator().manual_seed(seed)
    base = (torch.randn(shape, generator=generator, dtype=torch.float64) * 50).to(dtype)
    # Views of empty tensors are left out: torch.jit.load itself refuses an offset into an empty storage.
    view = draw(st.sampled_from(("same", "step", "offset", "transpose"))) if base.numel() else "same"
    if view == "step" and base.dim() >= 1:
        derived = base[::2]
    elif view == "offset" and base.dim() >= 1:
        derived = base[1:]
    elif view == "transpose" and base.dim() >= 2:
        derived = base.transpose(0, 1)
    else:
        derived = base
    return base, derived


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tensors=st.lists(_tensors(), min_size=1, max_size=3), as_parameter=st.booleans())
def test_reader_round_trips_any_shape_dtype_and_view(tmp_path, tensors, as_parameter):
    holder = _Holder()
    for index, (base, derived) in enumerate(tensors):
        if as_parameter and base.is_floating_point():
            holder.register_parameter(f"p{index}", nn.Parameter(base, requires_grad=False))
        else:
            holder.register_buffer(f"b{index}", base)
        holder.register_buffer(f"view{index}", derived)  # shares the storage of the one above
    path = _save_scripted(holder, tmp_path / "holder.pt")
    _assert_same_state(read_torchscript_state_dict(path), _jit_state_dict(path))


def test_a_zip_with_a_nested_constants_pkl_is_a_plain_checkpoint(tmp_path):
    # Only `<root>/constants.pkl` makes torch treat a zip as TorchScript; one deeper is any file.
    plain = tmp_path / "plain.pt"
    torch.save({"visual.proj": torch.arange(6.0).reshape(2, 3)}, plain)
    odd = add_member(plain, tmp_path / "odd.pt", "plain/foo/constants.pkl", b"not a pickle")
    assert not is_torchscript_archive(odd)
    state = read_state_dict(odd)
    assert list(state) == ["visual.proj"] and torch.equal(state["visual.proj"], torch.arange(6.0).reshape(2, 3))


def test_a_plain_torch_save_file_is_not_torchscript(tmp_path):
    torch.save({"w": torch.ones(1)}, tmp_path / "plain.pt")
    assert not is_torchscript_archive(tmp_path / "plain.pt")
    with pytest.raises(TorchScriptArchiveError, match="not a TorchScript archive"):
        read_torchscript_state_dict(tmp_path / "plain.pt")


def test_globals_other_than_the_tensor_rebuild_are_refused_unrun(openai_archive, tmp_path):
    marker = tmp_path / "marker"
    exploit = write_pickle_exploit_archive(openai_archive[1], tmp_path / "exploit.pt", marker)
    for weights_only in (True, False):
        with pytest.raises(TorchScriptArchiveError, match=r"(posix|os|nt)\.system"):
            read_state_dict(exploit, weights_only=weights_only)
    assert not marker.exists()


def test_a_storage_missing_from_the_archive_is_named(openai_archive, tmp_path):
    clip_path = openai_archive[1]
    broken = tmp_path / "broken.pt"
    with zipfile.ZipFile(clip_path) as old, zipfile.ZipFile(broken, "w") as new:
        for info in old.infolist():
            if not info.filename.endswith("/data/0"):
                new.writestr(info, old.read(info))
    with pytest.raises(TorchScriptArchiveError, match="data/0 is missing"):
        read_torchscript_state_dict(broken)


def test_a_truncated_storage_is_refused(openai_archive, tmp_path):
    truncated = replace_member(openai_archive[1], tmp_path / "truncated.pt", "/data/0", b"\0" * 3)
    with pytest.raises(TorchScriptArchiveError, match="holds 3 bytes"):
        read_torchscript_state_dict(truncated)
