"""LoRA-CLIP: adapters equal the LoRA formula, merge keeps the outputs, only adapters train."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn

pytest.importorskip("peft")

from froster import build_student  # noqa: E402
from froster.adapters.lora import DEFAULT_TARGETS  # noqa: E402
from froster.adapters.lora_attention import LinearMultiheadAttention  # noqa: E402
from froster.clip_loading import create_open_clip  # noqa: E402
from froster.testing import TINY_CLIP_NAME, synthetic_video, tiny_clip_overrides, tiny_prompts, tiny_student_kwargs  # noqa: E402

WIDTH, LAYERS, RANK, ALPHA = 64, 2, 4, 8.0  # the tiny CLIP: both towers 64 wide, 2 blocks, MLP 4x


def _student(**options):
    return build_student("lora", **{"rank": RANK, "alpha": ALPHA, **tiny_student_kwargs(), **options}).eval()


def _randomise_adapters(student: nn.Module) -> None:
    # peft starts B at zero, which would hide any error in how the update is applied.
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, param in student.named_parameters():
            if "lora_" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.3)


def _reference_clip(student: nn.Module) -> nn.Module:
    """A plain open_clip CLIP whose weights are W + (alpha / rank) B A, computed here by hand."""
    state = student.state_dict()
    reference = {}
    for key, value in state.items():
        if "lora_" in key:
            continue
        plain = key.replace(".base_layer.", ".").replace("attn.in_proj.weight", "attn.in_proj_weight")
        plain = plain.replace("attn.in_proj.bias", "attn.in_proj_bias")
        reference[plain] = value.clone()
        module = key.rsplit(".base_layer.", 1)[0]
        if key.endswith(".base_layer.weight"):
            b, a = state[f"{module}.lora_B.default.weight"], state[f"{module}.lora_A.default.weight"]
            reference[plain] += (ALPHA / RANK) * b @ a
    clip, _ = create_open_clip(TINY_CLIP_NAME, **tiny_clip_overrides())
    clip.load_state_dict(reference, strict=True)
    return clip.eval()


def _with_zero_adapters(student):
    zeroed = copy.deepcopy(student)
    with torch.no_grad():
        for name, param in zeroed.named_parameters():
            if "lora_B" in name:
                param.zero_()
    return zeroed


def _outputs(student, video, tokens):
    with torch.no_grad():
        return student.encode_video(video), student.encode_text(tokens)


@pytest.mark.parametrize("cross", [False, True])
@pytest.mark.parametrize("mask", ["none", "float", "bool"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_linear_attention_equals_multihead_attention(batch_first, mask, cross):
    mha = nn.MultiheadAttention(16, 2, batch_first=batch_first).eval()
    split = LinearMultiheadAttention.from_mha(mha).eval()
    shape = (3, 5, 16) if batch_first else (5, 3, 16)  # (N, L, W) or (L, N, W)
    q, kv = torch.randn(shape), torch.randn(shape)
    k = v = kv if cross else q
    causal = torch.ones(5, 5, dtype=torch.bool).triu(1)
    attn_mask = {"none": None, "bool": causal, "float": torch.zeros(5, 5).masked_fill(causal, float("-inf"))}[mask]
    with torch.no_grad():
        expected = mha(q, k, v, need_weights=False, attn_mask=attn_mask)[0]
        torch.testing.assert_close(split(q, k, v, attn_mask=attn_mask)[0], expected, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(split.to_mha()(q, k, v, need_weights=False, attn_mask=attn_mask)[0], expected)


@pytest.mark.parametrize("targets", [DEFAULT_TARGETS, ("attn.out_proj",)])
def test_unmerged_merged_and_formula_agree(targets):
    """The training forward, the merged model and a CLIP with W + (alpha/r) B A give one output.

    peft 0.21.2's own nn.MultiheadAttention wrapper adds the out_proj update twice in both the
    forward and the merge, which a merged-vs-unmerged check alone cannot see: the reference
    CLIP built from the formula is what catches it. ``out_proj`` alone is a valid target here.
    """
    student = _student(targets=targets)
    _randomise_adapters(student)
    video, tokens = synthetic_video(), student.tokenizer(tiny_prompts())
    unmerged = _outputs(student, video, tokens)
    base = _outputs(_with_zero_adapters(student), video, tokens)
    assert (unmerged[0] - base[0]).abs().max() > 1e-2  # the adapters do change the output

    reference = _reference_clip(student)
    frames = video.permute(0, 2, 1, 3, 4).flatten(0, 1)  # (B*T, C, H, W)
    with torch.no_grad():
        expected = reference.encode_image(frames).view(*unmerged[0].shape), reference.encode_text(tokens)
    merged = copy.deepcopy(student).merge()
    for got in (unmerged, _outputs(merged, video, tokens)):
        torch.testing.assert_close(got[0], expected[0], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(got[1], expected[1], atol=1e-5, rtol=1e-4)
    # Merged: plain CLIP keys and modules again.
    assert set(merged.state_dict()) == set(reference.state_dict())
    assert not any(isinstance(m, LinearMultiheadAttention) for m in merged.modules())


_SHAPES = {  # (in, out) of each target in a block of width W with a 4W MLP
    "attn.in_proj": (WIDTH, 3 * WIDTH),
    "attn.out_proj": (WIDTH, WIDTH),
    "mlp.c_fc": (WIDTH, 4 * WIDTH),
    "mlp.c_proj": (4 * WIDTH, WIDTH),
}


@pytest.mark.parametrize(
    "towers, targets",
    [(("vision", "text"), DEFAULT_TARGETS), (("vision",), ("attn",)), (("text",), ("mlp.c_fc", "attn.out_proj"))],
)
def test_trainable_count_matches_config(towers, targets):
    student = _student(towers=towers, targets=targets)
    expanded = [t for x in targets for t in (("attn.in_proj", "attn.out_proj") if x == "attn" else (x,))]
    expected = len(towers) * LAYERS * sum(RANK * (fan_in + fan_out) for fan_in, fan_out in (_SHAPES[t] for t in expanded))
    trainable = {n: p.numel() for n, p in student.named_parameters() if p.requires_grad}
    assert sum(trainable.values()) == expected
    assert all("lora_" in n for n in trainable)
    assert {"vision" if n.startswith("visual.") else "text" for n in trainable} == set(towers)


@pytest.mark.parametrize("train_logit_scale", [False, True])
def test_only_adapters_get_gradients(train_logit_scale):
    student = _student(train_logit_scale=train_logit_scale).train()
    _randomise_adapters(student)
    logits = student(synthetic_video(), student.tokenizer(tiny_prompts()))
    logits.logsumexp(dim=-1).mean().backward()
    with_grad = {n for n, p in student.named_parameters() if p.grad is not None}
    expected = {n for n, _ in student.named_parameters() if "lora_" in n} | ({"logit_scale"} if train_logit_scale else set())
    assert with_grad == expected


def test_text_tower_only_leaves_video_features_alone():
    student = _student(towers=("text",))
    video, tokens = synthetic_video(), student.tokenizer(tiny_prompts())
    before = _outputs(student, video, tokens)
    _randomise_adapters(student)
    after = _outputs(student, video, tokens)
    torch.testing.assert_close(after[0], before[0])
    assert (after[1] - before[1]).abs().max() > 1e-2


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(targets=("attn.q_proj",)), "match no module"),
        (dict(targets=("ln_1",)), "not an nn.Linear"),
        (dict(towers=("audio",)), "towers must be"),
        (dict(rank=0), "rank must be"),
    ],
)
def test_bad_settings_are_named(options, message):
    with pytest.raises(ValueError, match=message):
        _student(**options)


def test_clip_weights_load_through_the_key_hook():
    """CLIP's names map onto the adapted layers; with B = 0 the student then is that CLIP."""
    student = _student()
    clip, _ = create_open_clip(TINY_CLIP_NAME, **tiny_clip_overrides())
    clip.eval()
    converted = {student.clip_state_dict_key(k): v for k, v in clip.state_dict().items()}
    missing, unexpected = student.load_state_dict(converted, strict=False)
    assert unexpected == [] and sorted(missing) == student.non_clip_state_keys()
    assert all("lora_" in k for k in missing)
    video, tokens = synthetic_video(), student.tokenizer(tiny_prompts())
    got = _outputs(student, video, tokens)
    with torch.no_grad():
        frames = clip.encode_image(video.permute(0, 2, 1, 3, 4).flatten(0, 1)).view(got[0].shape)
        torch.testing.assert_close(got[0], frames, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(got[1], clip.encode_text(tokens), atol=1e-5, rtol=1e-4)


def test_adapter_gradients_follow_the_formula():
    """Gradients of A and B equal those of CLIP run with W + (alpha / r) B A, out_proj included."""
    student = _student(targets=("attn.out_proj", "mlp.c_fc"), towers=("vision",))
    _randomise_adapters(student)
    video = synthetic_video(1)
    weights = torch.randn(student.encode_video(video).shape, generator=torch.Generator().manual_seed(2))
    (student.encode_video(video) * weights).sum().backward()

    reference = _reference_clip(student)
    state = student.state_dict()
    leaves, params = {}, dict(reference.visual.named_parameters())
    for name in [k[: -len(".lora_A.default.weight")] for k in state if k.endswith(".lora_A.default.weight")]:
        a = state[f"{name}.lora_A.default.weight"].clone().requires_grad_()
        b = state[f"{name}.lora_B.default.weight"].clone().requires_grad_()
        leaves[name] = (a, b)
        params[f"{name[len('visual.'):]}.weight"] = state[f"{name}.base_layer.weight"] + (ALPHA / RANK) * b @ a
    frames = video.permute(0, 2, 1, 3, 4).flatten(0, 1)
    out = torch.func.functional_call(reference.visual, params, (frames,))  # (B*T, D)
    (out.view(weights.shape) * weights).sum().backward()
    adapted = dict(student.named_parameters())
    for name, (a, b) in leaves.items():
        torch.testing.assert_close(adapted[f"{name}.lora_A.default.weight"].grad, a.grad, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(adapted[f"{name}.lora_B.default.weight"].grad, b.grad, atol=1e-5, rtol=1e-4)
