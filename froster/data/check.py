"""``froster data check``: open every video of a split in worker processes and report what is wrong.

Each video is decoded with the decoder training uses (:func:`froster.data.read_frames`): its
first, middle and last frames (every frame with ``full=True``), which catches missing, truncated
and garbage files and streams that end early. The report holds, per video, whether it decoded,
its frame count, frame rate, duration and resolution, or the error. Unreadable videos are listed,
never fatal; :func:`write_clean_split` writes the split without them.
"""
from __future__ import annotations

import csv
import os
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Optional, Sequence, Union

import torch

from froster.data.annotations import read_split
from froster.data.decoding import CorruptVideoError, backend_for_workers, read_frames
from froster.data.textfiles import numbered_lines

PathLike = Union[str, os.PathLike]


@dataclass
class VideoCheck:
    """What checking one listed video found."""

    line: int
    path: str
    label: int
    ok: bool
    frames: Optional[int] = None
    fps: Optional[float] = None
    duration_s: Optional[float] = None
    width: Optional[int] = None
    height: Optional[int] = None
    error: str = ""


def check_video(path: str, line: int = 0, label: int = 0, backend: str = "auto", full: bool = False) -> VideoCheck:
    """Decode ``path``'s first, middle and last frames (all with ``full``) and describe it."""
    seen: dict = {}

    def select(num_video_frames: int, fps: Optional[float]) -> torch.Tensor:
        seen.update(frames=num_video_frames, fps=fps)
        if full:
            return torch.arange(num_video_frames)
        return torch.tensor(sorted({0, num_video_frames // 2, num_video_frames - 1}))

    try:
        frames = read_frames(path, select, backend=backend)  # (N, 3, H, W)
    except CorruptVideoError as error:
        return VideoCheck(line, path, label, ok=False, error=str(error))
    fps = seen["fps"]
    return VideoCheck(
        line, path, label, ok=True, frames=seen["frames"], fps=round(fps, 3) if fps else None,
        duration_s=round(seen["frames"] / fps, 3) if fps else None, width=frames.shape[-1], height=frames.shape[-2],
    )


def _check_one(arguments: tuple) -> VideoCheck:
    return check_video(*arguments)


def check_split(
    split_file: PathLike,
    root: Optional[PathLike] = None,
    num_classes: Optional[int] = None,
    workers: int = 4,
    backend: str = "auto",
    full: bool = False,
    progress: bool = True,
) -> list[VideoCheck]:
    """Check every video of a split, in ``workers`` processes (0: in this one), in file order.

    Listed videos that do not exist are reported like unreadable ones.
    """
    from tqdm.auto import tqdm

    records = read_split(split_file, root, num_classes=num_classes, on_missing="ignore")
    backend = backend_for_workers(backend)  # once here, so that a fallback warns once
    jobs = [(r.path, r.line, r.label, backend, full) for r in records]
    bar = tqdm(total=len(jobs), desc=f"check {Path(split_file).name}", unit="video", disable=not progress)
    results = []
    if workers <= 0:
        for job in jobs:
            results.append(_check_one(job))
            bar.update()
    else:
        # Not fork: a forked child inherits the parent's decoder and torch threads mid-state and
        # can block inside the decoder for good. forkserver workers start from a clean process.
        context = multiprocessing.get_context("forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            for result in pool.map(_check_one, jobs, chunksize=max(1, min(16, len(jobs) // (4 * workers)))):
                results.append(result)
                bar.update()
    bar.close()
    return results


def write_report(results: Sequence[VideoCheck], path: PathLike) -> Path:
    """One CSV row per video: ``line,path,label,ok,frames,fps,duration_s,width,height,error``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=[f.name for f in fields(VideoCheck)])
        writer.writeheader()
        writer.writerows(asdict(r) for r in results)
    return path


def write_clean_split(split_file: PathLike, results: Sequence[VideoCheck], path: PathLike) -> Path:
    """The split's lines of the videos that decoded, as written in the split (paths unchanged)."""
    good = {r.line for r in results if r.ok}
    lines = [text for number, text in numbered_lines(split_file, "split file") if number in good]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


def summary(results: Sequence[VideoCheck], shown: int = 10) -> str:
    """``N videos: K decoded, M unreadable`` and the first unreadable ones with their lines."""
    bad = [r for r in results if not r.ok]
    lines = [f"{len(results)} videos: {len(results) - len(bad)} decoded, {len(bad)} unreadable"]
    good = [r for r in results if r.ok]
    if good:
        frames = sorted(r.frames for r in good if r.frames is not None)  # set for every decoded video
        sizes = sorted({(r.width, r.height) for r in good})
        lines.append(f"frames per video: min {frames[0]}, median {frames[len(frames) // 2]}, max {frames[-1]}; "
                     f"resolutions: {', '.join(f'{w}x{h}' for w, h in sizes[:5])}{' ...' if len(sizes) > 5 else ''}")
    lines += [f"  line {r.line}: {r.error}" for r in bad[:shown]]
    if len(bad) > shown:
        lines.append(f"  ... and {len(bad) - shown} more (see the report)")
    return "\n".join(lines)


__all__ = ["VideoCheck", "check_split", "check_video", "summary", "write_clean_split", "write_report"]
