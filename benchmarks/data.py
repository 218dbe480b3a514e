"""Video decoding and the training loader: clips/s per worker for every backend, on Kinetics-like files.

    python benchmarks/data.py                      # ~3 min on 2 CPU cores; results under benchmarks/results/
    python benchmarks/data.py --tiny --out runs/data-tiny  # seconds: small videos, one repetition (the tests run this)

Videos are generated once (cached in ``--videos``): Kinetics-like, 340x256, 30 fps, H.264
(libx264, yuv420p, up to 2 B-frames), a keyframe every 30 frames, 10 s; and 60 s of the same kind.
The content is smooth moving shapes over a textured background with mild noise, so the files have
a Kinetics-like bit rate (the printed and recorded kbit/s).

Measured, each on one process with one decoding thread (= one DataLoader worker, one core):

* ``decode``: :func:`froster.data.read_frames` of one training clip at the recipes' sizes -- dense
  8 frames x stride 16, and uniform 8 segments -- a new random clip each call (the same sequence
  for every backend), timed interleaved so that all backends see the same machine load. Backends:
  ``torchcodec``, ``pyav`` (seeking), ``pytorchvideo`` (skipped on 60 s videos: it decodes the whole
  video to float32, about 1.9 GB per clip) and ``pyav_from_start``, the baseline the seeking
  decoders are measured against: PyAV decoding from the first frame, keeping the wanted ones.
  Every backend is first checked to return the same frames for the same indices, so each one's
  time is for the same work.
* ``loader``: a :class:`froster.data.VideoDataset` (training: decode + scale jitter 224-256 +
  224 crop + flip + normalisation) through a ``DataLoader`` with N workers, batches of 4 (the
  recipes' per-GPU batch), the default backend; clips/s, and clips/s per worker process.

GPU step times are not measured here (no GPU): a recipe step consumes 4 clips per GPU, so a loader
giving X clips/s per core keeps a GPU fed at a step time of t seconds with 4 / (t * X) cores.
"""
from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from _harness import machine_info, python_command, time_interleaved, write_results  # noqa: E402
from froster.data.decoding import checked_indices, decoding_errors, gather, read_frames, resolve_backend  # noqa: E402
from froster.data.sampling import FrameSampler  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
FULL = {"width": 340, "height": 256, "fps": 30, "gop": 30, "seconds": (10, 60), "repeats": 6, "warmup": 1,
        "loader_workers": (1, 2), "loader_batches": 10, "loader_videos": 8}
TINY = {"width": 64, "height": 48, "fps": 15, "gop": 15, "seconds": (2,), "repeats": 1, "warmup": 0,
        "loader_workers": (0,), "loader_batches": 1, "loader_videos": 4}
SAMPLINGS = {"dense": dict(mode="dense", num_frames=8, stride=16), "uniform": dict(mode="uniform", num_frames=8)}
# pytorchvideo decodes the whole video to float32 first: 60 s at 340x256 is about 1.9 GB a clip.
PYTORCHVIDEO_MAX_SECONDS = 20


def kinetics_like_frames(seconds: int, fps: int, width: int, height: int, seed: int = 0):
    """Frames of smooth moving shapes over a texture with mild noise, one at a time: (H, W, 3) uint8."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    texture = (rng.random((height // 8 + 1, width // 8 + 1, 3)) * 120).repeat(8, 0).repeat(8, 1)[:height, :width]
    for t in range(seconds * fps):
        phase = t / fps
        frame = texture + 60 * np.sin(xx / 23 + phase)[..., None] + 40 * np.cos(yy / 17 - 0.7 * phase)[..., None]
        for k in range(3):  # three rectangles crossing the frame at different speeds
            x0 = int((k * 97 + 40 * phase * (k + 1)) % width)
            y0 = int((k * 53 + 25 * phase) % height)
            frame[y0:y0 + height // 4, x0:x0 + width // 5] = (60 + 60 * k, 200 - 50 * k, 90 + 40 * k)
        frame += rng.normal(0, 3, frame.shape)
        yield np.clip(frame, 0, 255).astype(np.uint8)


def write_kinetics_like(path: Path, seconds: int, settings: dict) -> Path:
    """A libx264 file, yuv420p, a keyframe exactly every ``gop`` frames, up to 2 B-frames."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=settings["fps"])
        stream.width, stream.height, stream.pix_fmt = settings["width"], settings["height"], "yuv420p"
        stream.options = {"g": str(settings["gop"]), "keyint_min": str(settings["gop"]), "sc_threshold": "0",
                          "bf": "2", "preset": "medium", "crf": "23"}
        for array in kinetics_like_frames(seconds, settings["fps"], settings["width"], settings["height"]):
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def read_pyav_from_start(path: str, select) -> torch.Tensor:
    """The baseline: PyAV decoding from the first frame, keeping the wanted ones (no seeking)."""
    import av

    with decoding_errors(path):
        container = av.open(path)
    try:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        fps = float(stream.average_rate) if stream.average_rate else None
        indices = checked_indices(select(stream.frames, fps), stream.frames)
        wanted = set(indices.reshape(-1).tolist())
        kept = {}
        with decoding_errors(path):
            for index, frame in enumerate(container.decode(stream)):
                if index in wanted:
                    kept[index] = torch.from_numpy(frame.to_ndarray(format="rgb24"))
                    if len(kept) == len(wanted):
                        break
    finally:
        container.close()
    return gather(kept, indices)


def _reader(backend: str):
    if backend == "pyav_from_start":
        return read_pyav_from_start
    return lambda path, select: read_frames(path, select, backend=backend)


def backends_here() -> list[str]:
    names = ["pyav_from_start", "pyav", "pytorchvideo"]
    return names + (["torchcodec"] if resolve_backend("auto") == "torchcodec" else [])


def check_same_frames(path: Path, backends: list[str]) -> None:
    """Every backend returns the same frames for the same indices (else timings compare different work)."""
    indices = torch.tensor([[0, 17, 17, 100], [31, 59, 3, 149]])
    outputs = {b: _reader(b)(str(path), lambda n, fps: indices.clamp(max=n - 1)) for b in backends}
    first = next(iter(outputs.values()))
    for backend, frames in outputs.items():
        if not torch.equal(frames, first):
            raise AssertionError(f"{backend} returns other frames than {next(iter(outputs))} for {path}")


def bench_decode(path: Path, seconds: int, settings: dict) -> list[dict]:
    rows = []
    backends = [b for b in backends_here() if b != "pytorchvideo" or seconds <= PYTORCHVIDEO_MAX_SECONDS]
    check_same_frames(path, backends)
    for sampling, spec in SAMPLINGS.items():
        sampler = FrameSampler(**spec)
        generators = {b: torch.Generator().manual_seed(0) for b in backends}

        def one_clip(backend: str):
            reader, generator = _reader(backend), generators[backend]
            return lambda: reader(str(path), lambda n, fps: sampler(n, train=True, fps=fps, generator=generator))

        stats = time_interleaved({b: one_clip(b) for b in backends}, warmup=settings["warmup"], steps=settings["repeats"])
        for backend, stat in stats.items():
            rows.append({"kind": "decode", "video_s": seconds, "sampling": sampling, "backend": backend,
                         "clips_per_s": 1e3 / stat["mean_ms"], "median_ms": stat["median_ms"], "p90_ms": stat["p90_ms"],
                         "clips": stat["steps"]})
        by = {r["backend"]: r["clips_per_s"] for r in rows if r["sampling"] == sampling and r["video_s"] == seconds}
        default = resolve_backend("auto")
        for row in rows[-len(backends):]:
            row["default_backend"] = default
            row["default_over_this"] = by[default] / row["clips_per_s"]
    return rows


def bench_loader(path: Path, settings: dict, scratch: Path) -> list[dict]:
    from torch.utils.data import DataLoader

    from froster.data import VideoDataConfig, VideoDataset, collate_skip_none

    folder = scratch / "loader"
    lines = []
    for i in range(settings["loader_videos"]):
        copy = folder / f"video_{i:02d}.mp4"
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, copy)
        lines.append(f"{copy.name} 0")
    (folder / "train.txt").write_text("\n".join(lines) + "\n")
    size = 224 if settings is FULL else 32
    config = VideoDataConfig(crop_size=size, train_short_side=(size, size + size // 7))
    dataset = VideoDataset(folder / "train.txt", folder, ["a"], num_frames=8, sampling="dense", train=True, config=config)
    rows = []
    for workers in settings["loader_workers"]:
        loader = DataLoader(dataset, batch_size=4, shuffle=True, num_workers=workers, collate_fn=collate_skip_none,
                            persistent_workers=workers > 0, generator=torch.Generator().manual_seed(0))
        batches, clips = 0, 0
        iterator = iter(loader)
        next(iterator)  # start-up and the first batch are not timed
        start = time.perf_counter()
        while batches < settings["loader_batches"]:
            try:
                batch = next(iterator)
            except StopIteration:
                iterator = iter(loader)
                continue
            clips += batch["video"].shape[0]
            batches += 1
        elapsed = time.perf_counter() - start
        processes = max(workers, 1)
        rows.append({"kind": "loader", "video_s": 10 if settings is FULL else settings["seconds"][0], "sampling": "dense",
                     "backend": dataset.backend, "workers": workers, "clips_per_s": clips / elapsed,
                     "clips_per_s_per_worker": clips / elapsed / processes, "clips": clips, "crop": size})
        del iterator, loader
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true", help="small videos, one repetition (a smoke run)")
    parser.add_argument("--out", help="result folder; default benchmarks/results/data-cpu-<date>/")
    parser.add_argument("--videos", help="where generated videos are cached; default: <temp dir>/froster_bench_videos/{full,tiny}")
    args = parser.parse_args(argv)
    settings = TINY if args.tiny else FULL
    torch.set_num_threads(1)
    out = Path(args.out) if args.out else RESULTS / f"data-cpu-{dt.date.today().isoformat()}"
    cache = Path(tempfile.gettempdir()) / "froster_bench_videos" / ("tiny" if args.tiny else "full")
    videos = Path(args.videos) if args.videos else cache
    rows, files = [], {}
    for seconds in settings["seconds"]:
        path = videos / f"kinetics_like_{settings['width']}x{settings['height']}_{seconds}s.mp4"
        if not path.is_file():
            print(f"writing {path} ...", flush=True)
            write_kinetics_like(path, seconds, settings)
        files[seconds] = {"path": path.name, "kbit_per_s": round(path.stat().st_size * 8 / 1000 / seconds, 1)}
        print(f"decode, {seconds} s video ({files[seconds]['kbit_per_s']} kbit/s) ...", flush=True)
        rows += bench_decode(path, seconds, settings)
    print("loader ...", flush=True)
    rows += bench_loader(videos / files[settings["seconds"][0]]["path"], settings, videos)
    meta = {"machine": machine_info("cpu"), "command": python_command(), "videos": files,
            "settings": {k: v for k, v in settings.items()} | {"decode_threads": 1, "default_backend": resolve_backend("auto")}}
    columns = [("kind", "kind", ""), ("video_s", "video s", ""), ("sampling", "sampling", ""), ("backend", "backend", ""),
               ("workers", "workers", ""), ("clips_per_s", "clips/s", ".1f"),
               ("clips_per_s_per_worker", "clips/s/worker", ".1f"),
               ("median_ms", "median ms", ".1f"), ("default_over_this", "default / this", ".2f")]
    paths = write_results(rows, out, meta, columns, title="Video decoding and loader throughput")
    print(paths["md"].read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
