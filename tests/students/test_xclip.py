"""X-CLIP student: frames meet only through messages, the head's residuals, the checkpoint layout."""
from __future__ import annotations

import pytest
import torch

from froster import build_student
from froster.adapters.xclip import xclip_new_parameter_count
from froster.adapters.xclip_checkpoint import load_xclip_checkpoint, save_xclip_checkpoint
from froster.clip_loading import create_open_clip
from froster.testing import TINY_CLIP_NAME, synthetic_video, tiny_clip_overrides, tiny_prompts, tiny_student_kwargs

T = 4
VISION_WIDTH, LAYERS, EMBED_DIM = 64, 2, 32  # the tiny CLIP


def _student(seed: int = 0, **options):
    torch.manual_seed(seed)
    options.setdefault("activation", "quick_gelu")  # X-CLIP's CLIP is OpenAI's
    return build_student("xclip", **tiny_student_kwargs(num_frames=T), **options).eval()


def _silence_messages(student) -> None:
    # With message_attn's output at zero, a frame's message comes from its own class token only.
    with torch.no_grad():
        for block in student.vision_blocks:
            block.message_attn.out_proj.weight.zero_()
            block.message_attn.out_proj.bias.zero_()


@pytest.fixture(scope="module")
def student():
    return _student()


@pytest.mark.parametrize("silenced", [False, True])
@pytest.mark.parametrize("changed", range(T))
def test_frames_meet_only_through_message_attention(student, changed, silenced):
    student = _student() if silenced else student
    if silenced:
        _silence_messages(student)
    video = synthetic_video(1, T)
    other = video.clone()
    other[:, :, changed] = torch.randn_like(other[:, :, changed])
    with torch.no_grad():
        before, after = student.encode_video(video), student.encode_video(other)  # (1, T, D)
    untouched = [t for t in range(T) if t != changed]
    diff = (after[0, untouched] - before[0, untouched]).abs().max()
    if silenced:
        assert diff < 1e-5  # the other frames do not see the change
    else:
        assert diff > 1e-4  # with messages, they do
    assert (after[0, changed] - before[0, changed]).abs().max() > 1e-4


def test_integration_transformer_is_a_residual_on_the_mean(student):
    frames = torch.randn(3, T, EMBED_DIM)
    handle = student.mit.blocks.register_forward_hook(lambda module, args, out: torch.zeros_like(out))
    try:
        torch.testing.assert_close(student.mit(frames), frames.mean(dim=1))
    finally:
        handle.remove()
    assert (student.mit(frames) - frames.mean(dim=1)).abs().max() > 1e-4


def test_prompt_generator_conditions_text_on_each_video(student):
    video = synthetic_video(2, T)
    tokens = student.tokenizer(tiny_prompts())
    with torch.no_grad():
        encoding, text = student.encode_video_for_head(video), student.encode_text(tokens)
        visual_tokens = encoding.head_inputs["visual_tokens"]
        per_video = student.video_text_features(text, visual_tokens)  # (B, K, D)
        assert per_video.shape == (2, *text.shape)
        assert (per_video[0] - per_video[1]).abs().max() > 1e-5
        assert (per_video - text).abs().max() > 1e-5
        # The prompt is scaled by alpha: at zero, the text features come back unchanged.
        alpha = student.prompt_generator.alpha.clone()
        student.prompt_generator.alpha.zero_()
        torch.testing.assert_close(student.video_text_features(text, visual_tokens), text.expand(2, -1, -1))
        student.prompt_generator.alpha.copy_(alpha)


def test_head_takes_its_visual_tokens_explicitly_and_keeps_nothing_between_calls(student):
    video, other = synthetic_video(2, T), synthetic_video(2, T, seed=5)  # two batches of the same size
    tokens = student.tokenizer(tiny_prompts())
    with torch.no_grad():
        text = student.encode_text(tokens)
        first = student.encode_video_for_head(video)
        expected = student.classify(first.features, text, **first.head_inputs)
        student.encode_video_for_head(other)  # another batch in between changes nothing
        torch.testing.assert_close(student.classify(first.features, text, **first.head_inputs), expected)
        torch.testing.assert_close(student(video, tokens), expected)
        assert not any(isinstance(v, torch.Tensor) and v.shape[:1] == (2,) for v in vars(student).values())
        with pytest.raises(TypeError, match="visual_tokens"):
            student.classify(first.features, text)
        with pytest.raises(ValueError, match="same videos"):
            student.classify(first.features, text, visual_tokens=first.head_inputs["visual_tokens"][:1])


def test_new_parameter_count_matches_the_formula(student):
    plain, _ = create_open_clip(TINY_CLIP_NAME, **tiny_clip_overrides())
    new = sum(p.numel() for p in student.parameters()) - sum(p.numel() for p in plain.parameters())
    assert new == xclip_new_parameter_count(VISION_WIDTH, LAYERS, EMBED_DIM, T)
    # ViT-B/16 at 8 frames, as reported in the docs (X-CLIP's paper: about 45M).
    assert xclip_new_parameter_count(768, 12, 512, 8) == 45_308_416


def _xclip_layout_keys(clip_keys, layers, mit_layers=1, prompt_layers=2):
    """The keys of an X-CLIP checkpoint, written out from X-CLIP's module names."""
    keys = set(clip_keys)
    for i in range(layers):
        block = f"visual.transformer.resblocks.{i}"
        keys |= {f"{block}.message_fc.weight", f"{block}.message_fc.bias", f"{block}.message_ln.weight", f"{block}.message_ln.bias"}
        keys |= {f"{block}.message_attn.{n}" for n in ("in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias")}
    keys.add("mit.positional_embedding")
    clip_block = [k[len("transformer.resblocks.0."):] for k in clip_keys if k.startswith("transformer.resblocks.0.")]
    keys |= {f"mit.resblocks.{i}.{k}" for i in range(mit_layers) for k in clip_block}  # CLIP blocks
    keys |= {"prompts_generator.norm.weight", "prompts_generator.norm.bias", "prompts_generator.alpha"}
    for i in range(prompt_layers):
        layer = f"prompts_generator.decoder.{i}"
        keys |= {f"{layer}.cross_attn.{p}_proj.weight" for p in "qkv"} | {f"{layer}.cross_attn.proj.weight", f"{layer}.cross_attn.proj.bias"}
        keys |= {f"{layer}.{m}.{p}" for m in ("norm1", "norm3", "mlp.0", "mlp.3") for p in ("weight", "bias")}
    return keys | {"prompts_visual_ln.weight", "prompts_visual_ln.bias", "prompts_visual_proj"}


@pytest.mark.parametrize("flat", [False, True], ids=["nested", "model-prefix"])
def test_xclip_checkpoint_layout_round_trip(tmp_path, flat):
    source, target = _student(seed=0), _student(seed=1)
    path = tmp_path / "xclip.pth"
    save_xclip_checkpoint(source, path)
    saved = torch.load(path, weights_only=True)["model"]
    plain, _ = create_open_clip(TINY_CLIP_NAME, **tiny_clip_overrides())
    assert set(saved) == _xclip_layout_keys(plain.state_dict(), LAYERS)
    if flat:  # the same weights as one flat dict under "model."
        torch.save({f"model.{k}": v for k, v in saved.items()}, path)

    video, tokens = synthetic_video(2, T), source.tokenizer(tiny_prompts())
    load_xclip_checkpoint(target, path)
    with torch.no_grad():
        expected = source.encode_video(video), source.encode_text(tokens)
        got = target.encode_video(video), target.encode_text(tokens)
        for e, g in zip(expected, got):
            torch.testing.assert_close(g, e)
        source_tokens = source.encode_video_for_head(video).head_inputs
        target_tokens = target.encode_video_for_head(video).head_inputs
        torch.testing.assert_close(target.classify(*got, **target_tokens), source.classify(*expected, **source_tokens))


def test_xclip_checkpoint_errors_name_the_keys(tmp_path):
    source = _student()
    path = tmp_path / "xclip.pth"
    save_xclip_checkpoint(source, path)
    state = torch.load(path, weights_only=True)["model"]
    del state["prompts_generator.alpha"]
    torch.save({"model": state}, path)
    with pytest.raises(ValueError, match="prompt_generator.alpha"):
        load_xclip_checkpoint(_student(), path)
    missing, _ = load_xclip_checkpoint(_student(), path, strict=False)
    assert missing == ["prompt_generator.alpha"]
    with pytest.raises(ValueError, match="mit.position_embedding"):  # built for another frame count
        load_xclip_checkpoint(build_student("xclip", **tiny_student_kwargs(num_frames=T + 1), activation="quick_gelu"), path, strict=False)


def test_checkpointed_blocks_give_the_same_frames_and_gradients():
    student = _student().train()
    video = synthetic_video(1, T)
    grads = []
    for enable in (False, True):
        student.set_grad_checkpointing(enable)
        student.zero_grad()
        out = student.encode_video(video)
        out.square().sum().backward()
        grads.append((out.detach(), student.vision_blocks[0].message_fc.weight.grad.clone()))
    torch.testing.assert_close(grads[1][0], grads[0][0])
    torch.testing.assert_close(grads[1][1], grads[0][1])


def test_vision_towers_without_a_class_token_are_refused():
    overrides = tiny_clip_overrides()
    overrides["vision_cfg"]["pool_type"] = "avg"
    with pytest.raises(ValueError, match="class token"):
        build_student("xclip", clip=TINY_CLIP_NAME, pretrained=None, num_frames=T, **overrides)


def test_frozen_text_tower_is_encoded_once_per_prompt_set_and_never_trained():
    frozen, plain = _student(freeze_text=True), _student()
    frozen.load_state_dict(plain.state_dict())
    text_params = [n for n, _ in plain.named_parameters() if frozen._is_text_parameter(n)]
    assert "token_embedding.weight" in text_params and "text_projection" in text_params
    assert all(not p.requires_grad for n, p in frozen.named_parameters() if n in text_params)
    assert all(p.requires_grad for n, p in frozen.named_parameters() if n not in text_params)

    calls = []
    frozen.token_embedding.register_forward_hook(lambda *_: calls.append(1))
    tokens, other = frozen.tokenizer(tiny_prompts()), frozen.tokenizer(["a photo of juggling", "a photo of surfing"])
    with torch.no_grad():
        expected = plain.encode_text(tokens)
    first, again = frozen.encode_text(tokens), frozen.encode_text(tokens.clone())
    assert len(calls) == 1  # the same prompt set is not encoded twice
    torch.testing.assert_close(first, expected)
    torch.testing.assert_close(again, expected)
    frozen.encode_text(other)
    assert len(calls) == 2

    # Training: the head's prompt generator learns, the text tower gets no gradient.
    frozen.train()
    video = synthetic_video(2, T)
    frozen(video, tokens).logsumexp(dim=-1).sum().backward()
    assert frozen.prompt_generator.alpha.grad is not None
    assert all(p.grad is None for n, p in frozen.named_parameters() if n in text_params)

    # Loading other weights drops what was kept. (Scaled, not shifted: a constant added to the
    # projection meets zero-mean LayerNorm outputs and changes nothing.)
    changed = {k: v * 1.5 if k == "text_projection" else v for k, v in plain.state_dict().items()}
    frozen.load_state_dict(changed)
    plain.load_state_dict(changed)
    with torch.no_grad():
        reloaded = plain.encode_text(tokens)
        assert (reloaded - expected).abs().max() > 1e-3  # the new weights give other features
        torch.testing.assert_close(frozen.encode_text(tokens), reloaded)
