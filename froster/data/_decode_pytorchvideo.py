"""The ``"pytorchvideo"`` backend: pytorchvideo's ``EncodedVideo`` with its PyAV decoder.

Only ``pytorchvideo.data.encoded_video`` is imported: it does not import
``pytorchvideo.transforms``, the part of pytorchvideo 0.1.5 that fails with torchvision >= 0.17,
so nothing needs patching. It decodes the whole video to float32 before frames are picked. It
finds fewer frames than there are, or none (the file then counts as unreadable), in MPEG-TS files,
whose timestamps start late; PyAV reads them.
"""
from __future__ import annotations

import torch

from froster.data.decoding import CorruptVideoError, IndexFn, checked_indices, decoding_errors


def read(path: str, select: IndexFn) -> torch.Tensor:
    from pytorchvideo.data.encoded_video import EncodedVideo

    with decoding_errors(path):
        video = EncodedVideo.from_path(path, decode_audio=False, decoder="pyav")
        try:
            duration = float(video.duration)
            # get_clip's interval is half-open; its docstring asks for a small epsilon past the end.
            clip = video.get_clip(0.0, duration + 1e-3)["video"]  # (C, N, H, W) float32 in [0, 255]
        finally:
            video.close()
    if clip is None or clip.shape[1] == 0:
        # pytorchvideo logs decoding errors and returns no frames rather than raising.
        raise CorruptVideoError(f"{path}: no decodable video frames")
    num_video_frames = clip.shape[1]
    fps = num_video_frames / duration if duration > 0 else None
    indices = checked_indices(select(num_video_frames, fps), num_video_frames)
    frames = clip[:, indices.reshape(-1)]  # (C, V*T, H, W)
    frames = frames.round_().clamp_(0, 255).to(torch.uint8).transpose(0, 1)  # (V*T, C, H, W)
    return frames.reshape(*indices.shape, *frames.shape[1:])
