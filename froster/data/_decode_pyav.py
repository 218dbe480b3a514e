"""The ``"pyav"`` backend: list the packets once, then seek to the keyframe before each wanted frame.

Decoding from the first frame costs the whole video for every clip; a dense 8 x 16 clip of a
10 s Kinetics video needs about a third of it, and a uniform 8-segment clip one frame in 37.
Here the packets are demuxed once without decoding, which gives every frame's timestamp (sorted:
presentation order, frame ``i`` is the ``i``-th) and the keyframes. For each wanted frame the
decoder jumps to the last keyframe at or before it unless it is already decoding forward from
somewhere at least as close, then decodes up to it and converts only wanted frames to RGB.

Frames decoded right after a seek whose timestamp lies before the keyframe (leading frames of an
open GOP, which reference the previous GOP) are never kept. A file whose packets have no
timestamps, repeated ones, or frames whose timestamps are not among the packets' is decoded from
the start instead, counting frames as they come out.
"""
from __future__ import annotations

import bisect
import contextlib
from typing import TYPE_CHECKING, Iterator, Optional

import torch

from froster.data.decoding import CorruptVideoError, IndexFn, checked_indices, decoding_errors, gather

if TYPE_CHECKING:
    from av import VideoFrame


class _NoUsableIndex(CorruptVideoError):
    """The timestamps cannot index the frames; decode from the start instead.

    A :class:`CorruptVideoError` only so that :func:`decoding_errors` passes it through unchanged
    to :func:`read`, which catches it.
    """


@contextlib.contextmanager
def _opened(path: str) -> Iterator[tuple]:
    """``(container, first video stream)`` of ``path``, decoding with one thread."""
    import av

    with decoding_errors(path):
        container = av.open(path)
    try:
        with decoding_errors(path):
            if not container.streams.video:
                raise CorruptVideoError(f"{path}: no video stream")
            stream = container.streams.video[0]
            stream.codec_context.thread_count = 1
        yield container, stream
    finally:
        container.close()


def read(path: str, select: IndexFn) -> torch.Tensor:
    with _opened(path) as (container, stream):
        with decoding_errors(path):
            fps = float(stream.average_rate) if stream.average_rate else None
            index = _packet_index(container, stream)
        if index is not None:
            try:
                return _read_seeking(path, container, stream, fps, select, *index)
            except _NoUsableIndex:
                pass
    return _read_sequential(path, fps, select)


def _packet_index(container, stream) -> Optional[tuple[list[int], list[int]]]:
    """Sorted frame timestamps and the frame indices of keyframes, or None when unusable."""
    stamps, keys = [], []
    for packet in container.demux(stream):
        if packet.size == 0:  # the demuxer's end-of-stream marker
            continue
        if packet.pts is None:
            return None
        stamps.append(packet.pts)
        if packet.is_keyframe:
            keys.append(packet.pts)
    order = sorted(stamps)
    if len(set(order)) != len(order) or not keys:
        return None
    position = {pts: i for i, pts in enumerate(order)}
    return order, sorted(position[pts] for pts in keys)


def _rgb(frame) -> torch.Tensor:
    return torch.from_numpy(frame.to_ndarray(format="rgb24"))  # (H, W, 3)


def _read_seeking(path, container, stream, fps, select, stamps, key_frames) -> torch.Tensor:
    num_video_frames = len(stamps)
    indices = checked_indices(select(num_video_frames, fps), num_video_frames)
    wanted = sorted(set(indices.reshape(-1).tolist()))
    wanted_set = set(wanted)
    position = {pts: i for i, pts in enumerate(stamps)}

    def keyframe_before(target: int) -> int:
        at = bisect.bisect_right(key_frames, target) - 1
        return key_frames[at] if at >= 0 else 0

    kept: dict[int, torch.Tensor] = {}
    last_frame: Optional[VideoFrame] = None  # the last frame decoded, converted only if the file ends early
    current: Optional[int] = None  # index of the last decoded frame; None right after a seek
    floor = 0  # frames before the keyframe of the last seek are not trusted
    cursor = 0  # wanted[cursor] is the next frame to keep
    frames: Iterator[VideoFrame] = iter(())
    with decoding_errors(path):
        while cursor < len(wanted):
            target = wanted[cursor]
            floor_if_seek = keyframe_before(target)
            if current is None or current >= target or floor_if_seek > current + 1:
                container.seek(stamps[floor_if_seek], stream=stream, backward=True, any_frame=False)
                frames, current, floor = container.decode(stream), None, floor_if_seek
            for frame in frames:
                index = position.get(frame.pts)
                if index is None:
                    raise _NoUsableIndex
                if index < floor:
                    continue  # a leading frame of an open GOP, decoded without its references
                current, last_frame = index, frame
                if index in wanted_set and index not in kept:
                    kept[index] = _rgb(frame)
                while cursor < len(wanted) and wanted[cursor] in kept:
                    cursor += 1
                if cursor == len(wanted):
                    break
                if index >= wanted[cursor]:
                    raise _NoUsableIndex  # the decoder skipped a frame: timestamps do not index frames
                if keyframe_before(wanted[cursor]) > current + 1:
                    break  # seeking ahead is cheaper than decoding up to the next wanted frame
            else:  # the file ends before the remaining wanted frames: hold the last decoded one
                if last_frame is None:
                    raise CorruptVideoError(f"{path}: no decodable video frames")
                tail = _rgb(last_frame)
                kept.update({i: tail for i in wanted[cursor:]})
                break
    return gather(kept, indices)


def _read_sequential(path: str, fps: Optional[float], select: IndexFn) -> torch.Tensor:
    """Decode from the first frame, keeping the wanted ones (no usable timestamps).

    Each pass opens the file afresh: demuxers of raw streams cannot seek back to the start.
    """
    with _opened(path) as (container, stream), decoding_errors(path):
        num_video_frames = sum(1 for _ in container.decode(stream))
    if not num_video_frames:
        raise CorruptVideoError(f"{path}: no decodable video frames")
    indices = checked_indices(select(num_video_frames, fps), num_video_frames)
    wanted = set(indices.reshape(-1).tolist())
    kept: dict[int, torch.Tensor] = {}
    with _opened(path) as (container, stream), decoding_errors(path):
        for index, frame in enumerate(container.decode(stream)):
            if index in wanted:
                kept[index] = _rgb(frame)
                if len(kept) == len(wanted):
                    break
    if len(kept) < len(wanted):  # fewer frames the second time: the file is not readable twice alike
        raise CorruptVideoError(f"{path}: frames {sorted(wanted - set(kept))[:5]} could not be decoded")
    return gather(kept, indices)
