"""Read the frames a sampler asks for from an encoded video file.

Two backends, chosen explicitly:

* ``"pytorchvideo"`` (default): pytorchvideo's ``EncodedVideo`` with its PyAV decoder. Only
  ``pytorchvideo.data.encoded_video`` is imported, which does not import
  ``pytorchvideo.transforms`` (the part of pytorchvideo 0.1.5 that fails with current torchvision),
  so nothing needs patching. It decodes the whole video to float32 before frames are picked, which
  costs about ``4 * N * H * W * 3`` bytes per video: fine for 10 s clips at 256 px, heavy for long
  videos. It also finds no frames in some MPEG-TS files (streams whose timestamps start late),
  which then count as unreadable; the ``"pyav"`` backend reads them.
* ``"pyav"``: PyAV directly, streaming: every frame is decoded but only the sampled ones are
  converted to RGB and kept, so memory is that of the clip. It trusts the container's frame count
  (or duration x rate) to place the clips; frames the header promises but the file lacks are
  replaced by the last decoded frame.

Both return the same frames for the same indices (a test checks this) and raise
:class:`CorruptVideoError` for anything unreadable -- a missing, truncated or garbage file, or a
stream with no decodable frame -- so the dataset has one exception to catch.
"""
from __future__ import annotations

import contextlib
import os
from typing import Callable, Iterator, Optional, Union

import torch

PathLike = Union[str, os.PathLike]
IndexFn = Callable[[int, Optional[float]], torch.Tensor]
BACKENDS = ("pytorchvideo", "pyav")


class CorruptVideoError(RuntimeError):
    """A video file that cannot be opened or decoded."""


def read_frames(path: PathLike, select: IndexFn, backend: str = "pytorchvideo") -> torch.Tensor:
    """Decode ``path`` and gather the frames ``select`` chooses.

    Args:
        path: The video file.
        select: ``select(num_video_frames, fps) -> indices``, an int64 tensor of any shape with
            values in ``[0, num_video_frames)``, e.g. a ``(V, T)`` tensor from
            :class:`froster.data.sampling.FrameSampler`. ``fps`` may be None when the file does
            not say.
        backend: ``"pytorchvideo"`` or ``"pyav"`` (see the module docstring).

    Returns:
        uint8 frames of shape ``indices.shape + (3, H, W)``, e.g. ``(V, T, 3, H, W)``.

    Raises:
        CorruptVideoError: The file is missing, unreadable or has no decodable frame.
        ValueError: ``select`` returned indices outside the video (a bug, not a bad file: only
            errors of the decoder itself become :class:`CorruptVideoError`).
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CorruptVideoError(f"{path}: no such file")
    reader = _read_pytorchvideo if backend == "pytorchvideo" else _read_pyav
    return reader(path, select)


@contextlib.contextmanager
def _decoding(path: str) -> Iterator[None]:
    """Turn whatever the decoder raises into :class:`CorruptVideoError`."""
    try:
        yield
    except CorruptVideoError:
        raise
    except Exception as error:  # noqa: BLE001 - decoders raise many types; all mean "unreadable"
        raise CorruptVideoError(f"{path}: {type(error).__name__}: {error}") from error


def _checked(indices: torch.Tensor, num_video_frames: int) -> torch.Tensor:
    indices = torch.as_tensor(indices, dtype=torch.int64)
    if indices.numel() and (indices.min() < 0 or indices.max() >= num_video_frames):
        raise ValueError(
            f"frame indices must lie in [0, {num_video_frames}), got [{indices.min()}, {indices.max()}]"
        )
    return indices


def _read_pytorchvideo(path: str, select: IndexFn) -> torch.Tensor:
    # The submodule import keeps pytorchvideo.transforms (broken with torchvision >= 0.17) unloaded.
    from pytorchvideo.data.encoded_video import EncodedVideo

    with _decoding(path):
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
    indices = _checked(select(num_video_frames, fps), num_video_frames)
    frames = clip[:, indices.reshape(-1)]  # (C, V*T, H, W)
    frames = frames.round_().clamp_(0, 255).to(torch.uint8).transpose(0, 1)  # (V*T, C, H, W)
    return frames.reshape(*indices.shape, *frames.shape[1:])


def _read_pyav(path: str, select: IndexFn) -> torch.Tensor:
    import av

    with _decoding(path):
        container = av.open(path)
    try:
        with _decoding(path):
            if not container.streams.video:
                raise CorruptVideoError(f"{path}: no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            fps = float(stream.average_rate) if stream.average_rate else None
            num_video_frames = stream.frames
            if not num_video_frames and stream.duration and stream.time_base and fps:
                num_video_frames = int(round(float(stream.duration * stream.time_base) * fps))
            if not num_video_frames:
                # No count in the header: one pass without colour conversion to count frames.
                num_video_frames = sum(1 for _ in container.decode(stream))
                container.seek(0)
            if not num_video_frames:
                raise CorruptVideoError(f"{path}: no decodable video frames")
        indices = _checked(select(num_video_frames, fps), num_video_frames)
        wanted = set(indices.reshape(-1).tolist())
        kept: dict[int, torch.Tensor] = {}
        last_index, last_frame = -1, None
        with _decoding(path):
            for index, frame in enumerate(container.decode(stream)):
                last_index, last_frame = index, frame
                if index in wanted:
                    kept[index] = torch.from_numpy(frame.to_ndarray(format="rgb24"))  # (H, W, C)
                if len(kept) == len(wanted):
                    break
            if last_frame is None:
                raise CorruptVideoError(f"{path}: no decodable video frames")
            if len(kept) < len(wanted):  # the header promised more frames than the file holds
                tail = torch.from_numpy(last_frame.to_ndarray(format="rgb24"))
                kept.update({i: tail for i in wanted if i > last_index})
    finally:
        container.close()
    flat = torch.stack([kept[i] for i in indices.reshape(-1).tolist()])  # (V*T, H, W, C)
    return flat.permute(0, 3, 1, 2).reshape(*indices.shape, 3, *flat.shape[1:3])
