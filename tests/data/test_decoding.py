"""Synthetic videos round-trip through both decoders, which agree; bad files raise one error type."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("av")

from froster.data.decoding import CorruptVideoError, read_frames  # noqa: E402
from froster.data.synthetic import make_clip, pick_codec, write_corrupt_video, write_video  # noqa: E402

from .conftest import FRAMES, SIZE  # noqa: E402

BACKENDS = ["pytorchvideo", "pyav"]


def _all_frames(num_video_frames, fps):
    return torch.arange(num_video_frames)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    frames = make_clip(2, 3, FRAMES, SIZE, np.random.default_rng(1))  # (T, H, W, 3) uint8
    return write_video(tmp_path_factory.mktemp("decode") / "clip.mp4", frames, fps=8), frames


@pytest.mark.parametrize("backend", BACKENDS)
def test_round_trip_shape_count_rate_and_pixels(written, backend):
    path, frames = written
    seen = {}

    def select(num_video_frames, fps):
        seen.update(n=num_video_frames, fps=fps)
        return torch.arange(num_video_frames)

    decoded = read_frames(path, select, backend=backend)  # (N, 3, H, W)
    assert seen["n"] == FRAMES and seen["fps"] == pytest.approx(8.0)
    assert decoded.shape == (FRAMES, 3, SIZE, SIZE) and decoded.dtype == torch.uint8
    original = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    # Lossy 4:2:0 coding drops the per-pixel noise but keeps the picture: compare 4x4 block means,
    # and check that every decoded frame is nearest to its own original (order kept).
    decoded_blocks, original_blocks = F.avg_pool2d(decoded.float(), 4), F.avg_pool2d(original, 4)
    assert (decoded_blocks - original_blocks).abs().mean() < 4
    nearest = torch.cdist(decoded_blocks.flatten(1), original_blocks.flatten(1)).argmin(dim=1)
    assert torch.equal(nearest, torch.arange(FRAMES))


@pytest.mark.parametrize("backend", BACKENDS)
def test_container_without_a_frame_count(tmp_path, backend):
    """Matroska headers carry no frame count or stream duration: the decoders must count."""
    frames = make_clip(0, 3, 12, 16, np.random.default_rng(0))
    path = write_video(tmp_path / "clip.mkv", frames, fps=8, container_format="matroska")
    decoded = read_frames(path, lambda n, fps: torch.tensor([n - 1, 0]), backend=backend)
    reference = read_frames(path, _all_frames, backend=backend)
    assert reference.shape == (12, 3, 16, 16)
    assert torch.equal(decoded[0], reference[-1]) and torch.equal(decoded[1], reference[0])
    # Indices outside the video are the caller's bug, not a corrupt file to skip.
    with pytest.raises(ValueError, match="must lie in"):
        read_frames(path, lambda n, fps: torch.tensor([0, n]), backend=backend)


def test_backends_return_identical_frames_for_any_index_shape(written):
    path, _ = written

    def select(num_video_frames, fps):
        return torch.tensor([[3, 3, 0, 23], [23, 5, 9, 1]])

    outputs = [read_frames(path, select, backend=b) for b in BACKENDS]
    assert outputs[0].shape == (2, 4, 3, SIZE, SIZE)
    assert torch.equal(outputs[0], outputs[1])
    assert torch.equal(outputs[0][0, 0], outputs[0][0, 1])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", ["truncated", "garbage", "empty"])
def test_unreadable_files_raise_corrupt_video_error(tmp_path, backend, mode):
    path = write_corrupt_video(tmp_path / f"{mode}.mp4", mode)
    with pytest.raises(CorruptVideoError, match=f"{mode}.mp4"):
        read_frames(path, _all_frames, backend=backend)
    with pytest.raises(CorruptVideoError, match="no such file"):
        read_frames(tmp_path / "absent.mp4", _all_frames, backend=backend)


def test_codec_choice_falls_back_and_reports():
    assert pick_codec() in ("libx264", "mpeg4", "mjpeg")
    assert pick_codec(("no-such-codec", "mpeg4")) == "mpeg4"
    with pytest.raises(RuntimeError, match="none of the video encoders"):
        pick_codec(("no-such-codec",))


def test_importing_the_decoder_leaves_pytorchvideo_transforms_alone():
    import sys

    if "pytorchvideo.transforms" in sys.modules:
        pytest.skip("something else in this process imported pytorchvideo.transforms")
    import pytorchvideo.data.encoded_video  # noqa: F401 - what the pytorchvideo backend imports

    assert "pytorchvideo.transforms" not in sys.modules
