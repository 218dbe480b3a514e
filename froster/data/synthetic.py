"""Small synthetic labelled videos, written with PyAV, for tests, examples and smoke runs.

Each class is a bar of its own colour sliding across a noisy dark background in one of four
directions (class ``k`` has hue ``k / K`` and direction ``k mod 4``); the bar's width, speed,
starting phase and the noise vary per video. Colour alone separates the classes, so a tiny model
learns them well above chance in a few steps, and the motion gives temporal models something to
use. Class names say what is seen ("red bar moving right"), so text prompts built from them are
meaningful to a CLIP text encoder.

Layout written under ``root``::

    root/classes.txt                        one class name per line
    root/<split>.txt                        "videos/<split>/<class>/<video>.mp4 <label>" lines
    root/videos/<split>/class_00/video_000.mp4 ...

The encoder is the first of ``libx264``, ``mpeg4`` and ``mjpeg`` that this PyAV build can actually
open (builds differ: some lack libx264); all three go in an MP4 container, whose index is written
last, so a truncated file fails to open -- which :func:`write_corrupt_video` relies on.
"""
from __future__ import annotations

import colorsys
import functools
import os
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple, Optional, Sequence, Union

import numpy as np

from froster.data.annotations import write_split
from froster.data.classes import write_class_names

PathLike = Union[str, os.PathLike]

CODEC_PREFERENCE = ("libx264", "mpeg4", "mjpeg")
DIRECTIONS = ("right", "left", "down", "up")
_HUE_NAMES = ("red", "orange", "yellow", "lime", "green", "teal", "cyan", "azure", "blue", "violet", "magenta", "pink")


class SyntheticDataset(NamedTuple):
    """Where :func:`write_synthetic_dataset` put the split and the class names."""

    split_file: Path
    class_names_file: Path


# Lossless RGB encoders and their default options: decoded frames equal the encoded ones exactly.
# libx264rgb with qp 0 keeps inter prediction (P-frames), so seeking is exercised too.
LOSSLESS = {"libx264rgb": {"qp": "0", "g": "6", "preset": "medium"}, "ffv1": {"g": "6"}}


def _pix_fmt(codec: str) -> str:
    return {"mjpeg": "yuvj420p", "libx264rgb": "rgb24", "ffv1": "bgr0"}.get(codec, "yuv420p")


@functools.lru_cache(maxsize=None)
def pick_codec(preference: Sequence[str] = CODEC_PREFERENCE) -> str:
    """The first codec of ``preference`` that PyAV can open as an encoder here."""
    import av
    from av.video.codeccontext import VideoCodecContext

    for codec in preference:
        if codec not in av.codecs_available:
            continue
        try:
            context = av.CodecContext.create(codec, "w")
            if not isinstance(context, VideoCodecContext):
                continue
            context.width = context.height = 16
            context.pix_fmt = _pix_fmt(codec)
            context.time_base = Fraction(1, 8)
            context.open()
        except Exception:  # noqa: BLE001 - listed but unusable in this build; try the next
            continue
        return codec
    raise RuntimeError(f"none of the video encoders {preference} works in this PyAV build")


def write_video(
    path: PathLike,
    frames: np.ndarray,
    fps: int = 8,
    codec: Optional[str] = None,
    container_format: str = "mp4",
    options: Optional[dict[str, str]] = None,
) -> Path:
    """Encode RGB frames as a video file.

    Args:
        path: The file to write.
        frames: uint8 ``(T, H, W, 3)`` RGB frames; H and W must be even (4:2:0 chroma).
        fps: Frame rate.
        codec: Encoder name; :func:`pick_codec` chooses when None. ``"libx264rgb"`` and ``"ffv1"``
            encode losslessly in RGB (see :data:`LOSSLESS`).
        container_format: FFmpeg muxer name: ``"mp4"``, ``"matroska"``, ``"avi"``, ...
        options: Encoder options replacing the defaults, e.g. ``{"g": "30", "bf": "2"}`` for a
            keyframe every 30 frames and up to two B-frames with libx264.

    Returns:
        The path written.
    """
    import av
    from av.video.stream import VideoStream

    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected (T, H, W, 3) frames, got {frames.shape}")
    height, width = frames.shape[1:3]
    if height % 2 or width % 2:
        raise ValueError(f"frame height and width must be even for 4:2:0 video, got {height}x{width}")
    codec = codec or pick_codec()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(os.fspath(path), "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=fps)
        if not isinstance(stream, VideoStream):
            raise ValueError(f"codec={codec!r} is not a video encoder (it makes a {type(stream).__name__})")
        stream.width, stream.height, stream.pix_fmt = width, height, _pix_fmt(codec)
        if options is not None:
            stream.options = dict(options)
        elif codec == "libx264":
            # Near-lossless: keeps the class colours intact through 4:2:0 at tiny sizes.
            stream.options = {"crf": "10", "preset": "ultrafast"}
        elif codec in LOSSLESS:
            stream.options = dict(LOSSLESS[codec])
        else:
            stream.options = {"qscale": "2"}
        for array in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():  # flush delayed frames
            container.mux(packet)
    return path


def class_name(label: int, num_classes: int) -> str:
    """The name of synthetic class ``label``, e.g. ``"red bar moving right"``."""
    hue_name = _HUE_NAMES[int(round(label / num_classes * len(_HUE_NAMES))) % len(_HUE_NAMES)]
    name = f"{hue_name} bar moving {DIRECTIONS[label % len(DIRECTIONS)]}"
    return name if num_classes <= len(_HUE_NAMES) else f"{name} {label}"


def make_clip(label: int, num_classes: int, frames: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """The frames of one video of class ``label``: uint8 ``(T, size, size, 3)``."""
    rgb = np.array(colorsys.hsv_to_rgb(label / num_classes, 1.0, 1.0)) * 255.0  # (3,)
    width = max(2, int(size * rng.uniform(0.15, 0.3)))
    speed = rng.uniform(0.5, 1.5) * size / frames  # pixels per frame
    phase = rng.uniform(0, size)
    direction = DIRECTIONS[label % len(DIRECTIONS)]
    noise_level = rng.uniform(5, 25)
    coords = np.arange(size)
    video = np.empty((frames, size, size, 3), dtype=np.float64)
    for t in range(frames):
        video[t] = rng.uniform(20, 40) + rng.normal(0, noise_level, (size, size, 3))
        step = (phase + speed * t) % size
        position = step if direction in ("right", "down") else size - 1 - step
        on = np.abs(coords - position) < width / 2  # (size,) pixels covered by the bar
        if direction in ("right", "left"):
            video[t][:, on] = rgb
        else:
            video[t][on, :] = rgb
    return np.clip(video, 0, 255).astype(np.uint8)


def write_synthetic_dataset(
    root: PathLike,
    num_classes: int = 4,
    videos_per_class: int = 4,
    frames: int = 16,
    size: int = 32,
    fps: int = 8,
    seed: int = 0,
    split: str = "train",
) -> SyntheticDataset:
    """Write ``num_classes * videos_per_class`` labelled videos, a split file and class names.

    Args:
        root: Output directory (created).
        num_classes: K.
        videos_per_class: Videos of each class.
        frames: Frames per video.
        size: Height and width in pixels (even).
        fps: Frame rate.
        seed: Seed of all randomness; the same arguments write the same pixels.
        split: Name of the split file, ``<root>/<split>.txt``. Writing a second split with another
            seed into the same root gives train/test splits sharing the class names.

    Returns:
        The split file and the class-name file.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    entries = []
    for label in range(num_classes):
        for index in range(videos_per_class):
            relative = f"videos/{split}/class_{label:02d}/video_{index:03d}.mp4"
            write_video(root / relative, make_clip(label, num_classes, frames, size, rng), fps=fps)
            entries.append((relative, label))
    names = [class_name(label, num_classes) for label in range(num_classes)]
    return SyntheticDataset(write_split(root / f"{split}.txt", entries), write_class_names(root / "classes.txt", names))


def write_corrupt_video(path: PathLike, mode: str = "truncated", seed: int = 0) -> Path:
    """Write a video file that no decoder can read, for testing the skip-and-count path.

    Args:
        path: The file to write.
        mode: ``"truncated"``: the first 40% of a valid MP4 (its index is lost), as an interrupted
            download leaves it; ``"garbage"``: random bytes; ``"empty"``: a zero-byte file.
        seed: Seed of the content.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    if mode == "truncated":
        write_video(path, make_clip(0, 2, 16, 32, rng))
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * 0.4)])
    elif mode == "garbage":
        path.write_bytes(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    elif mode == "empty":
        path.write_bytes(b"")
    else:
        raise ValueError(f"mode must be 'truncated', 'garbage' or 'empty', got {mode!r}")
    return path
