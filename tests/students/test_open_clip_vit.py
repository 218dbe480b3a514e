"""The shim over open_clip's vision transformer computes exactly what ``visual(images)`` computes.

Students that run CLIP's blocks themselves (vclip, xclip) call ``embed_images`` and ``pool_tokens``
around their own block loop. These tests pin that the two ends, with open_clip's blocks between
them, are open_clip's forward bit for bit, for the pooling variants open_clip configs use; a change
in open_clip's forward makes them fail instead of letting students compute something else.
"""
from __future__ import annotations

import pytest
import torch

from froster.adapters._open_clip_vit import embed_images, pool_tokens
from froster.clip_loading import create_open_clip
from froster.testing import TINY_CLIP_NAME, tiny_clip_overrides


def _visual(**vision):
    overrides = tiny_clip_overrides()
    overrides["vision_cfg"] = {**overrides["vision_cfg"], **vision}
    torch.manual_seed(0)
    return create_open_clip(TINY_CLIP_NAME, **overrides)[0].visual.eval()


@pytest.mark.parametrize(
    "vision",
    [
        {},  # CLIP: class token, ln_post before pooling
        {"pool_type": "avg"},
        {"final_ln_after_pool": True},
        {"pool_type": "avg", "final_ln_after_pool": True},
        {"no_ln_pre": True},
        {"ls_init_value": 0.1},
    ],
    ids=["clip", "avg", "ln-after-pool", "avg-ln-after-pool", "no-ln-pre", "layer-scale"],
)
def test_ends_around_open_clips_blocks_equal_its_forward(vision):
    visual = _visual(**vision)
    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        tokens = embed_images(visual, images)  # (N, 1 + P, W)
        for block in visual.transformer.resblocks:
            tokens = block(tokens)
        assert torch.equal(pool_tokens(visual, tokens), visual(images))


def test_patch_dropout_is_applied_in_training():
    visual = _visual(patch_dropout=0.5).train()
    images = torch.randn(2, 3, 32, 32)
    torch.manual_seed(1)
    tokens = embed_images(visual, images)
    assert tokens.shape[1] < 1 + 4  # some of the 4 patches dropped, the class token kept
    torch.manual_seed(1)
    assert torch.equal(tokens, visual.ln_pre(visual.patch_dropout(_raw_embeddings(visual, images))))


def _raw_embeddings(visual, images):
    x = visual.conv1(images).flatten(2).transpose(1, 2)  # (N, P, W)
    cls = visual.class_embedding.reshape(1, 1, -1).expand(x.shape[0], -1, -1)
    return torch.cat([cls, x], dim=1) + visual.positional_embedding


def test_attentional_pooling_is_refused():
    visual = _visual(attentional_pool=True)
    with pytest.raises(NotImplementedError, match="attentional pooling"):
        pool_tokens(visual, torch.zeros(1, 5, 64))
