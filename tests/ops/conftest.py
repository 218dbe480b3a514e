"""Shared set-up of the operator tests.

Without a GPU the Triton kernels run in Triton's CPU interpreter. ``TRITON_INTERPRET`` is read
when a kernel is decorated with ``@triton.jit``, so it must be set before any kernel module is
imported; conftest files load before the test modules of their folder. With a GPU the kernels
run compiled on it and the same tests use CUDA tensors.
"""
import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
