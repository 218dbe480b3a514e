"""The ``"torchcodec"`` backend: ``VideoDecoder`` in exact seek mode and ``get_frames_at``.

Exact mode scans the file once when it is opened, so the frame count is that of the file (not of
its header) and frame ``i`` is the ``i``-th in presentation order -- the same frames as the other
backends. Each distinct index is decoded once; repeated indices are gathered afterwards.
"""
from __future__ import annotations

import torch

from froster.data.decoding import CorruptVideoError, IndexFn, checked_indices, decoding_errors


def read(path: str, select: IndexFn, device: torch.device) -> torch.Tensor:
    from torchcodec.decoders import VideoDecoder

    with decoding_errors(path):
        decoder = VideoDecoder(path, seek_mode="exact", num_ffmpeg_threads=1, device=str(device))
        metadata = decoder.metadata
        num_video_frames = int(metadata.num_frames or 0)
        fps = float(metadata.average_fps) if metadata.average_fps else None
    if num_video_frames < 1:
        raise CorruptVideoError(f"{path}: no decodable video frames")
    indices = checked_indices(select(num_video_frames, fps), num_video_frames)
    distinct = torch.unique(indices.reshape(-1))  # sorted
    with decoding_errors(path):
        frames = decoder.get_frames_at(distinct.tolist()).data  # (U, 3, H, W) uint8
    where = torch.searchsorted(distinct, indices.reshape(-1)).to(frames.device)
    return frames[where].reshape(*indices.shape, *frames.shape[1:])
