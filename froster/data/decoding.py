"""Read the frames a sampler asks for from an encoded video file, with one of three decoders.

Backends (``backend=`` of :func:`read_frames`, ``VideoDataConfig.backend``, ``data.backend``):

* ``"auto"`` (the default everywhere): ``"torchcodec"`` for MP4, MOV, Matroska and WebM files
  when it imports and works here, ``"pyav"`` for other containers (AVI, MPEG-TS: torchcodec 0.17
  can return other frames there) and everywhere torchcodec cannot load, with one
  :class:`DecoderFallbackWarning` per process saying why.
* ``"torchcodec"``: PyTorch's decoder (``torchcodec.decoders.VideoDecoder`` in exact seek mode,
  ``get_frames_at``). It needs FFmpeg's shared libraries (e.g. Debian's ``ffmpeg`` package).
  ``device="cuda"`` decodes on the GPU (NVDEC) and returns CUDA tensors.
* ``"pyav"``: PyAV, which ships its own FFmpeg and needs nothing from the system. The packets are
  listed once (no decoding) to map frame indices to timestamps and keyframes; the decoder then
  seeks to the keyframe before each wanted frame instead of decoding from the first frame, and
  converts only the wanted frames to RGB. Files whose packets carry no usable timestamps are
  decoded from the start instead.
* ``"pytorchvideo"``: pytorchvideo's ``EncodedVideo`` (kept as a named option for recipes that
  ask for it). Only ``pytorchvideo.data.encoded_video`` is imported, which does not import the
  part of pytorchvideo 0.1.5 that fails with current torchvision. It decodes the whole video to
  float32 before frames are picked: about ``4 x frames x H x W x 3`` bytes per video.

Frame ``i`` is the ``i``-th frame in presentation order and the frame count is the number of
frames in the file, for every backend, so all of them return the same frames for the same
indices (the tests check this pixel for pixel on MP4 and Matroska files; docs/data.md names the
AVI and MPEG-TS files where torchcodec and pytorchvideo do not). Anything unreadable -- a missing,
truncated or garbage file, a stream without a decodable frame -- raises :class:`CorruptVideoError`,
the one exception the dataset catches.

Each backend decodes with one thread: a data loader gets its parallelism from worker processes.
"""
from __future__ import annotations

import contextlib
import functools
import os
import warnings
from typing import Callable, Iterator, Optional, Union

import torch

PathLike = Union[str, os.PathLike]
IndexFn = Callable[[int, Optional[float]], torch.Tensor]
DECODERS = ("torchcodec", "pyav", "pytorchvideo")
BACKENDS = ("auto",) + DECODERS
DEFAULT_BACKEND = "auto"
# Containers where torchcodec's exact seek returns the frames of a plain pass (tested); in AVI
# and MPEG-TS files with B-frames torchcodec 0.17 can return shifted frames or fail on the last.
TORCHCODEC_CONTAINERS = (".mp4", ".m4v", ".mov", ".mkv", ".webm")


class CorruptVideoError(RuntimeError):
    """A video file that cannot be opened or decoded."""


class DecoderFallbackWarning(UserWarning):
    """``backend="auto"`` could not use torchcodec and decodes with PyAV instead."""


@functools.lru_cache(maxsize=None)
def torchcodec_problem() -> Optional[str]:
    """Why torchcodec cannot decode here (not installed, FFmpeg missing, ...), or None if it can."""
    try:
        from torchcodec.decoders import VideoDecoder  # noqa: F401 - loads FFmpeg's libraries
    except ModuleNotFoundError as error:
        if error.name is not None and error.name.split(".")[0] == "torchcodec":
            return "torchcodec is not installed (pip install torchcodec)"
        return f"torchcodec failed to import: {error}"
    except Exception as error:  # noqa: BLE001 - a missing FFmpeg shows up as RuntimeError/OSError
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return f"torchcodec failed to load ({first_line}); it needs FFmpeg's shared libraries, e.g. `apt-get install ffmpeg`"
    return None


_warned_fallback = False


def resolve_backend(backend: str = DEFAULT_BACKEND, path: Optional[PathLike] = None) -> str:
    """The decoder a ``backend`` name stands for: ``"auto"`` becomes torchcodec or PyAV.

    With a ``path``, ``"auto"`` takes PyAV for containers outside :data:`TORCHCODEC_CONTAINERS`.
    The first time ``"auto"`` cannot use torchcodec, one :class:`DecoderFallbackWarning` says why.

    Raises:
        ValueError: An unknown name.
    """
    global _warned_fallback
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend != "auto":
        return backend
    problem = torchcodec_problem()
    if problem is None:
        if path is not None and os.path.splitext(os.fspath(path))[1].lower() not in TORCHCODEC_CONTAINERS:
            return "pyav"
        return "torchcodec"
    if not _warned_fallback:
        _warned_fallback = True
        warnings.warn(f"decoding with PyAV: {problem}", DecoderFallbackWarning, stacklevel=2)
    return "pyav"


def backend_for_workers(backend: str = DEFAULT_BACKEND) -> str:
    """What a dataset hands its workers: ``"auto"`` stays ``"auto"`` (chosen per file) where
    torchcodec works; otherwise the decoder it stands for, so that a fallback warns once, here.
    """
    decoder = resolve_backend(backend)
    return "auto" if backend == "auto" and decoder == "torchcodec" else decoder


def read_frames(
    path: PathLike,
    select: IndexFn,
    backend: str = DEFAULT_BACKEND,
    device: Union[str, torch.device] = "cpu",
) -> torch.Tensor:
    """Decode the frames ``select`` chooses from ``path``.

    Args:
        path: The video file.
        select: ``select(num_video_frames, fps) -> indices``, an int64 tensor of any shape with
            values in ``[0, num_video_frames)``, e.g. a ``(V, T)`` tensor from
            :class:`froster.data.sampling.FrameSampler`. ``fps`` may be None when the file does
            not say.
        backend: ``"auto"``, ``"torchcodec"``, ``"pyav"`` or ``"pytorchvideo"`` (module docstring).
        device: Where torchcodec decodes (``"cuda"`` uses the GPU's decoder); the other backends
            decode on the CPU only.

    Returns:
        uint8 frames of shape ``indices.shape + (3, H, W)``, e.g. ``(V, T, 3, H, W)``.

    Raises:
        CorruptVideoError: The file is missing, unreadable or has no decodable frame.
        ValueError: An unknown backend, a GPU device for a CPU-only backend, or indices from
            ``select`` outside the video (a bug, not a bad file: only errors of the decoder
            itself become :class:`CorruptVideoError`).
    """
    decoder = resolve_backend(backend, path)
    device = torch.device(device)
    if device.type != "cpu" and decoder != "torchcodec":
        raise ValueError(f"decoding on {device} needs backend='torchcodec', got {backend!r} ({decoder})")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={str(device)!r}: CUDA is not available here; decode on 'cpu'")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CorruptVideoError(f"{path}: no such file")
    if decoder == "torchcodec":
        from froster.data._decode_torchcodec import read as read_on_device

        return read_on_device(path, select, device)
    if decoder == "pyav":
        from froster.data._decode_pyav import read
    else:
        from froster.data._decode_pytorchvideo import read
    return read(path, select)


@contextlib.contextmanager
def decoding_errors(path: str) -> Iterator[None]:
    """Turn whatever a decoder raises inside the block into :class:`CorruptVideoError`."""
    try:
        yield
    except CorruptVideoError:
        raise
    except Exception as error:  # noqa: BLE001 - decoders raise many types; all mean "unreadable"
        raise CorruptVideoError(f"{path}: {type(error).__name__}: {error}") from error


def checked_indices(indices: torch.Tensor, num_video_frames: int) -> torch.Tensor:
    """``indices`` as int64, after checking they lie in ``[0, num_video_frames)``."""
    indices = torch.as_tensor(indices, dtype=torch.int64)
    if indices.numel() and (indices.min() < 0 or indices.max() >= num_video_frames):
        raise ValueError(
            f"frame indices must lie in [0, {num_video_frames}), got [{indices.min()}, {indices.max()}]"
        )
    return indices


def gather(frames: dict[int, torch.Tensor], indices: torch.Tensor) -> torch.Tensor:
    """Stack decoded ``{index: (H, W, 3)}`` frames in the layout of ``indices``: ``(*, 3, H, W)``."""
    flat = torch.stack([frames[i] for i in indices.reshape(-1).tolist()])  # (N, H, W, 3)
    return flat.permute(0, 3, 1, 2).reshape(*indices.shape, 3, *flat.shape[1:3])


__all__ = [
    "BACKENDS",
    "DEFAULT_BACKEND",
    "CorruptVideoError",
    "DecoderFallbackWarning",
    "read_frames",
    "resolve_backend",
    "torchcodec_problem",
]
