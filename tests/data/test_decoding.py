"""Every decoder returns the same frames, pixel for pixel; bad files raise one error type.

Exactness is checked two ways: a losslessly encoded file must decode to the frames that were
encoded (every backend), and on a lossy H.264 file with B-frames and short GOPs every backend
must return, for any set of indices, the frames of one plain PyAV pass from the first frame.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("av")

from froster.data.decoding import (  # noqa: E402
    BACKENDS,
    CorruptVideoError,
    backend_for_workers,
    read_frames,
    resolve_backend,
    torchcodec_problem,
)
from froster.data.synthetic import make_clip, pick_codec, write_corrupt_video, write_video  # noqa: E402

from .conftest import FRAMES, SIZE  # noqa: E402

# Installed is not enough: without FFmpeg's shared libraries torchcodec fails to load, and "auto"
# then decodes with PyAV.
HAS_TORCHCODEC = torchcodec_problem() is None
needs_torchcodec = pytest.mark.skipif(not HAS_TORCHCODEC, reason=f"torchcodec cannot decode here: {torchcodec_problem()}")
DECODERS = [pytest.param("torchcodec", marks=needs_torchcodec), "pyav", "pytorchvideo"]


def _all_frames(num_video_frames, fps):
    return torch.arange(num_video_frames)


def _plain_pyav_frames(path) -> torch.Tensor:
    """Reference: every frame of one PyAV pass from the start, in output order. (N, 3, H, W)"""
    import av

    with av.open(str(path)) as container:
        frames = [torch.from_numpy(f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]
    return torch.stack(frames).permute(0, 3, 1, 2)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    frames = make_clip(2, 3, FRAMES, SIZE, np.random.default_rng(1))  # (T, H, W, 3) uint8
    return write_video(tmp_path_factory.mktemp("decode") / "clip.mp4", frames, fps=8), frames


@pytest.fixture(scope="module")
def bframes_video(tmp_path_factory):
    """Lossy H.264, keyframe every 8 frames, up to 3 B-frames (packets out of presentation order)."""
    frames = make_clip(1, 3, 48, 32, np.random.default_rng(2))
    options = {"g": "8", "bf": "3", "preset": "medium", "sc_threshold": "0"}
    path = write_video(tmp_path_factory.mktemp("bframes") / "clip.mp4", frames, fps=8, codec="libx264", options=options)
    return path, _plain_pyav_frames(path)


def test_the_b_frame_fixture_has_b_frames_and_several_gops(bframes_video):
    import av

    with av.open(str(bframes_video[0])) as container:
        packets = [p for p in container.demux(video=0) if p.size]
    stamps = [p.pts for p in packets]
    assert stamps != sorted(stamps), "no B-frames: decode order equals presentation order"
    assert sum(p.is_keyframe for p in packets) >= 5


@pytest.mark.parametrize("backend", DECODERS)
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


@pytest.mark.parametrize("codec", ["libx264rgb", "ffv1"])
@pytest.mark.parametrize("backend", DECODERS)
def test_lossless_files_decode_to_the_encoded_frames_exactly(tmp_path, codec, backend):
    import av

    if codec not in av.codecs_available:
        pytest.skip(f"this PyAV build has no {codec} encoder")
    frames = make_clip(0, 3, 30, 32, np.random.default_rng(3))
    container = "mp4" if codec == "libx264rgb" else "matroska"
    name = "clip.mp4" if container == "mp4" else "clip.mkv"
    path = write_video(tmp_path / name, frames, fps=8, codec=codec, container_format=container)
    original = torch.from_numpy(frames).permute(0, 3, 1, 2)  # (T, 3, H, W)
    indices = torch.tensor([[29, 0, 7, 7], [13, 6, 12, 28]])  # out of order, repeated, across GOPs
    assert torch.equal(read_frames(path, _all_frames, backend=backend), original)
    assert torch.equal(read_frames(path, lambda n, fps: indices, backend=backend), original[indices])


@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_any_indices_give_the_frames_of_a_plain_pass(bframes_video, data):
    path, reference = bframes_video
    n = reference.shape[0]
    shape = data.draw(st.sampled_from([(1,), (8,), (3, 8), (2, 2, 3)]))
    flat = data.draw(st.lists(st.integers(0, n - 1), min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
    indices = torch.tensor(flat).reshape(shape)
    backends = ["pyav", "pytorchvideo"] + (["torchcodec"] if HAS_TORCHCODEC else [])
    for backend in backends:
        decoded = read_frames(path, lambda num, fps: indices, backend=backend)
        assert torch.equal(decoded, reference[indices]), backend


@pytest.mark.parametrize("container_format", ["mpegts", "h264"])
def test_pyav_decodes_from_the_start_where_timestamps_cannot_index_frames(tmp_path, monkeypatch, container_format):
    """MPEG-TS with B-frames (its frames' timestamps are not its packets') and a raw H.264 stream (no
    timestamps, no seeking back) are read from the first frame, to the frames of a plain pass."""
    import av

    import froster.data._decode_pyav as pyav

    if "libx264" not in av.codecs_available:
        pytest.skip("this PyAV build has no libx264 encoder")
    frames = make_clip(0, 3, 20, 32, np.random.default_rng(0))
    options = {"g": "5", "bf": "2"}
    path = write_video(tmp_path / f"clip.{container_format}", frames, codec="libx264", container_format=container_format, options=options)
    from_start = []
    real = pyav._read_sequential
    monkeypatch.setattr(pyav, "_read_sequential", lambda *args: from_start.append(args) or real(*args))
    indices = torch.tensor([[19, 0, 7], [7, 12, 3]])
    assert torch.equal(read_frames(path, lambda n, fps: indices, backend="pyav"), _plain_pyav_frames(path)[indices])
    if container_format == "h264":
        assert from_start, "a stream without timestamps must not be read by seeking"


@pytest.mark.parametrize("backend", DECODERS)
def test_container_without_a_frame_count(tmp_path, backend):
    """Matroska headers carry no frame count or stream duration: the decoders must count."""
    frames = make_clip(0, 3, 12, 16, np.random.default_rng(0))
    path = write_video(tmp_path / "clip.mkv", frames, fps=8, container_format="matroska")
    decoded = read_frames(path, lambda n, fps: torch.tensor([n - 1, 0]), backend=backend)
    reference = read_frames(path, _all_frames, backend=backend)
    assert reference.shape == (12, 3, 16, 16)
    assert torch.equal(reference, _plain_pyav_frames(path))
    assert torch.equal(decoded[0], reference[-1]) and torch.equal(decoded[1], reference[0])
    # Indices outside the video are the caller's bug, not a corrupt file to skip.
    with pytest.raises(ValueError, match="must lie in"):
        read_frames(path, lambda n, fps: torch.tensor([0, n]), backend=backend)


@pytest.mark.parametrize("backend", DECODERS)
@pytest.mark.parametrize("mode", ["truncated", "garbage", "empty"])
def test_unreadable_files_raise_corrupt_video_error(tmp_path, backend, mode):
    path = write_corrupt_video(tmp_path / f"{mode}.mp4", mode)
    with pytest.raises(CorruptVideoError, match=f"{mode}.mp4"):
        read_frames(path, _all_frames, backend=backend)
    with pytest.raises(CorruptVideoError, match="no such file"):
        read_frames(tmp_path / "absent.mp4", _all_frames, backend=backend)


def test_backend_names_and_devices_are_checked(written):
    path, _ = written
    with pytest.raises(ValueError, match="backend must be one of"):
        read_frames(path, _all_frames, backend="opencv")
    with pytest.raises(ValueError, match="needs backend='torchcodec'"):
        read_frames(path, _all_frames, backend="pyav", device="cuda")
    if HAS_TORCHCODEC and not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            read_frames(path, _all_frames, backend="torchcodec", device="cuda")
    assert set(BACKENDS) == {"auto", "torchcodec", "pyav", "pytorchvideo"}


@needs_torchcodec
def test_auto_uses_torchcodec_where_it_works():
    assert resolve_backend("auto") == "torchcodec"
    assert [resolve_backend("auto", f"v{ext}") for ext in (".mp4", ".MKV", ".webm")] == ["torchcodec"] * 3
    # torchcodec can misread AVI and MPEG-TS files with B-frames: "auto" decodes them with PyAV.
    assert [resolve_backend("auto", f"v{ext}") for ext in (".avi", ".ts", ".AVI")] == ["pyav"] * 3
    assert resolve_backend("torchcodec", "v.avi") == "torchcodec"  # asked for by name, it is used
    assert backend_for_workers("auto") == "auto" and backend_for_workers("pyav") == "pyav"


@needs_torchcodec
def test_auto_reads_avi_files_with_pyav(tmp_path, monkeypatch):
    import froster.data._decode_torchcodec as torchcodec_reader

    frames = make_clip(2, 3, FRAMES, SIZE, np.random.default_rng(2))  # (T, H, W, 3) uint8
    path = write_video(tmp_path / "clip.avi", frames, fps=8)
    expected = read_frames(path, _all_frames, backend="pyav")

    def refuse(*args, **kwargs):
        raise AssertionError("torchcodec was asked to decode an AVI file")

    monkeypatch.setattr(torchcodec_reader, "read", refuse)
    torch.testing.assert_close(read_frames(path, _all_frames), expected, rtol=0, atol=0)


# A torchcodec whose import fails the way it does when FFmpeg's libraries are missing.
_BROKEN_TORCHCODEC = "raise RuntimeError('Could not load libtorchcodec. Likely causes: FFmpeg is not installed')\n"


def test_auto_falls_back_to_pyav_with_one_warning_when_torchcodec_cannot_load(tmp_path, written):
    path, _ = written
    fake = tmp_path / "site" / "torchcodec"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(_BROKEN_TORCHCODEC)
    (fake / "decoders.py").write_text(_BROKEN_TORCHCODEC)
    script = textwrap.dedent(f"""
        import sys, warnings
        sys.path.insert(0, {str(fake.parent)!r})
        import torch
        from froster.data.decoding import DecoderFallbackWarning, read_frames
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            frames = [read_frames({str(path)!r}, lambda n, fps: torch.arange(n)) for _ in range(3)]
            pyav = read_frames({str(path)!r}, lambda n, fps: torch.arange(n), backend="pyav")
        ours = [w for w in caught if issubclass(w.category, DecoderFallbackWarning)]
        assert len(ours) == 1, [str(w.message) for w in caught]
        assert "FFmpeg" in str(ours[0].message) and "PyAV" in str(ours[0].message), ours[0].message
        assert all(torch.equal(f, pyav) for f in frames)
        print("fell back once")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "fell back once" in result.stdout


def test_codec_choice_falls_back_and_reports():
    assert pick_codec() in ("libx264", "mpeg4", "mjpeg")
    assert pick_codec(("no-such-codec", "mpeg4")) == "mpeg4"
    with pytest.raises(RuntimeError, match="none of the video encoders"):
        pick_codec(("no-such-codec",))


def test_the_pytorchvideo_backend_leaves_pytorchvideo_transforms_unimported(written):
    """In a fresh interpreter, whatever other tests imported: decoding must not load the module
    of pytorchvideo 0.1.5 that fails with current torchvision."""
    path, _ = written
    script = textwrap.dedent(f"""
        import sys, torch
        from froster.data.decoding import read_frames
        read_frames({str(path)!r}, lambda n, fps: torch.arange(2), backend="pytorchvideo")
        assert "pytorchvideo.data.encoded_video" in sys.modules
        assert "pytorchvideo.transforms" not in sys.modules, "pytorchvideo.transforms was imported"
        print("clean")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "clean" in result.stdout
