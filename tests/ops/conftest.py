"""Operator tests: the Triton kernels run compiled on a GPU, or in Triton's CPU interpreter.

``TRITON_INTERPRET=1`` is set for CPU-only machines in the root ``tests/conftest.py``, before
anything can import Triton.
"""
