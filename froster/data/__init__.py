"""Video data for FROSTER: split files, class names, frame sampling, decoding, transforms.

Importing this package imports only torch; torchvision, torchcodec, PyAV and pytorchvideo are
imported by the functions and classes that use them (``pip install froster-distill[video]``).
"""
from froster.data.annotations import MissingVideosError, SplitFileError, VideoRecord, read_split, write_split
from froster.data.classes import (
    ClassFileError,
    ClassListError,
    read_class_prompts,
    parse_class_list,
    read_class_names,
    read_descriptions,
    write_class_names,
)
from froster.data.dataset import CorruptVideoWarning, VideoDataConfig, VideoDataset, collate_skip_none
from froster.data.decoding import BACKENDS, CorruptVideoError, DecoderFallbackWarning, backend_for_workers, read_frames, resolve_backend
from froster.data.sampler import EvalDistributedSampler
from froster.data.sampling import FrameSampler, dense_indices, uniform_indices
from froster.data.synthetic import SyntheticDataset, write_corrupt_video, write_synthetic_dataset
from froster.data.textfiles import DataFileError
from froster.data.transforms import CLIP_MEAN, CLIP_STD, TestTransform, TrainTransform

__all__ = [
    "BACKENDS",
    "CLIP_MEAN",
    "CLIP_STD",
    "ClassFileError",
    "ClassListError",
    "CorruptVideoError",
    "CorruptVideoWarning",
    "DataFileError",
    "DecoderFallbackWarning",
    "EvalDistributedSampler",
    "FrameSampler",
    "MissingVideosError",
    "SplitFileError",
    "SyntheticDataset",
    "TestTransform",
    "TrainTransform",
    "VideoDataConfig",
    "VideoDataset",
    "VideoRecord",
    "read_class_prompts",
    "collate_skip_none",
    "dense_indices",
    "parse_class_list",
    "read_class_names",
    "read_descriptions",
    "read_frames",
    "read_split",
    "backend_for_workers",
    "resolve_backend",
    "uniform_indices",
    "write_class_names",
    "write_corrupt_video",
    "write_split",
    "write_synthetic_dataset",
]
