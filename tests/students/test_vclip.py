"""Open-VCLIP's neighbour-frame attention: what it sees, what it reuses, where it equals CLIP."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from froster.adapters.vclip import VCLIP, cross_frame_block
from froster.clip_loading import create_open_clip
from froster.testing import TINY_CLIP_NAME, synthetic_video, tiny_clip_overrides, tiny_prompts

from .conftest import build_tiny


@pytest.fixture
def clip():
    torch.manual_seed(0)
    model, _ = create_open_clip(TINY_CLIP_NAME, **tiny_clip_overrides())
    return model.eval()


def _images(video: torch.Tensor) -> torch.Tensor:
    b, c, t, h, w = video.shape
    return video.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)


def test_state_dict_is_clips(clip):
    student = VCLIP(clip, num_frames=4)
    reference, _ = create_open_clip(TINY_CLIP_NAME, **tiny_clip_overrides())
    assert list(student.state_dict()) == list(reference.state_dict())
    assert sum(p.numel() for p in student.parameters()) == sum(p.numel() for p in reference.parameters())
    reference.load_state_dict(student.state_dict())  # and back: a CLIP checkpoint loads directly


def test_text_tower_is_clips_and_trainable(clip):
    tokens = VCLIP(clip, num_frames=2).tokenizer(tiny_prompts())
    expected = clip.encode_text(tokens)
    student = VCLIP(clip, num_frames=2)
    torch.testing.assert_close(student.encode_text(tokens), expected)
    assert all(p.requires_grad for p in student.parameters())


def test_one_frame_with_masking_equals_clip(clip):
    video = synthetic_video(3, 1)
    expected = clip.encode_image(_images(video))  # (B, D)
    student = VCLIP(clip, num_frames=1, clip_ends="mask").eval()
    torch.testing.assert_close(student.encode_video(video)[:, 0], expected, atol=1e-5, rtol=1e-4)


def test_zero_padding_differs_from_masking_at_the_clip_ends_only_through_attention(clip):
    video = synthetic_video(2, 1)
    zeros = VCLIP(clip, num_frames=1, clip_ends="zeros").eval().encode_video(video)
    masked = VCLIP(clip, num_frames=1, clip_ends="mask").eval().encode_video(video)
    # The zero keys take softmax weight: a lone frame's own tokens get only part of it.
    assert (zeros - masked).abs().max() > 1e-3


def test_zero_padding_matches_explicit_zero_keys(clip):
    # The released code's padding: projected keys and values of the missing neighbour are 0,
    # so each zero key has logit 0. Reproduce it with plain attention over [k_self, 0, 0].
    block = clip.visual.transformer.resblocks[0]
    x = torch.randn(1, 5, 64)
    attn, heads = block.attn, block.attn.num_heads
    q, k, v = F.linear(block.ln_1(x), attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
    q, k, v = (y.view(1, 5, heads, -1).transpose(1, 2) for y in (q, k, v))
    pad = torch.zeros_like(k)
    out = F.scaled_dot_product_attention(q, torch.cat([pad, k, pad], 2), torch.cat([pad, v, pad], 2))
    h = x + attn.out_proj(out.transpose(1, 2).reshape(1, 5, 64))
    expected = h + block.mlp(block.ln_2(h))
    torch.testing.assert_close(cross_frame_block(block, x, num_frames=1, clip_ends="zeros"), expected)


@pytest.mark.parametrize("clip_ends", ["zeros", "mask"])
def test_receptive_field_grows_by_one_frame_per_block(clip, clip_ends):
    num_frames, tokens = 5, clip.visual.transformer.resblocks[0].attn.embed_dim
    blocks = clip.visual.transformer.resblocks
    x = torch.randn(num_frames, 5, tokens)  # one video, (T, N, W)
    changed = x.clone()
    changed[3] = torch.randn_like(x[3])  # frame t + 2 for t = 1 (a constant shift would vanish in LayerNorm)

    def run(inp, depth):
        for block in blocks[:depth]:
            inp = cross_frame_block(block, inp, num_frames, clip_ends)
        return inp

    one, one_changed = run(x, 1), run(changed, 1)
    torch.testing.assert_close(one[1], one_changed[1])  # t+2 is out of reach after one block
    assert (one[2] - one_changed[2]).abs().max() > 1e-4  # t+1 sees it at once
    two, two_changed = run(x, 2), run(changed, 2)
    assert (two[1] - two_changed[1]).abs().max() > 1e-4  # through frame t+1 after two blocks
    torch.testing.assert_close(two[0], two_changed[0])  # still three frames away


@settings(max_examples=6, deadline=None)
@given(num_frames=st.integers(1, 5), clip_ends=st.sampled_from(["zeros", "mask"]), seed=st.integers(0, 2**16))
def test_reversing_time_reverses_the_frame_features(num_frames, clip_ends, seed):
    # Both clip ends are padded alike and softmax ignores key order, so the model has no arrow of time.
    student = build_tiny("vclip", num_frames=num_frames, clip_ends=clip_ends).eval()
    video = synthetic_video(2, num_frames, seed=seed)
    with torch.no_grad():
        forward, backward = student.encode_video(video), student.encode_video(video.flip(2))
    torch.testing.assert_close(backward, forward.flip(1), atol=1e-5, rtol=1e-4)


def test_frames_interact_unlike_clip(clip):
    video = synthetic_video(1, 3)
    student = VCLIP(clip, num_frames=3, clip_ends="mask").eval()
    edited = video.clone()
    edited[:, :, 2] = torch.randn_like(edited[:, :, 2])
    with torch.no_grad():
        assert (student.encode_video(video)[0, 0] - student.encode_video(edited)[0, 0]).abs().max() > 1e-4


def test_head_is_mean_of_per_frame_logits():
    student = build_tiny("vclip")
    frames, text = torch.randn(2, 4, 32), torch.randn(5, 32)
    per_frame = torch.stack([F.normalize(frames[:, t], dim=-1) @ F.normalize(text, dim=-1).t() for t in range(4)], 1)
    expected = student.logit_scale.exp() * per_frame.mean(dim=1)
    torch.testing.assert_close(student.classify(frames, text), expected)


def test_gradient_checkpointing_gives_the_same_gradients():
    plain, ckpt = build_tiny("vclip"), build_tiny("vclip")
    ckpt.set_grad_checkpointing(True)
    video = synthetic_video(2, 4)
    for model in (plain, ckpt):
        model.encode_video(video).square().sum().backward()
    torch.testing.assert_close(ckpt.visual.conv1.weight.grad, plain.visual.conv1.weight.grad)


def test_bad_options_are_refused(clip):
    with pytest.raises(ValueError, match="clip_ends"):
        VCLIP(clip, num_frames=2, clip_ends="reflect")
    with pytest.raises(ValueError, match="num_frames"):
        VCLIP(clip, num_frames=0)
    with pytest.raises(ValueError, match="ResidualAttentionBlock"):
        build_tiny("vclip", vision_cfg=dict(width=64, layers=2, head_width=32, patch_size=16, image_size=32, qk_norm=True))
