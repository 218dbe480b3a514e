"""How the Triton op launches: counts at FROSTER's sizes, the device guard, dispatch, fallbacks.

Launches are counted by wrapping each kernel's ``run`` (called by compiled and interpreted
kernels alike), cross-checked on a GPU with Triton's global launch hook; torch ops are traced with
a ``TorchDispatchMode``. A change that adds a launch or a torch kernel fails here.
"""
from __future__ import annotations

import contextlib
import os
import sys
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
triton = pytest.importorskip("triton")

import froster.ops._fused_autograd as fused_autograd  # noqa: E402
import froster.ops._gemm_autograd as gemm_autograd  # noqa: E402
import froster.ops.dispatch as dispatch  # noqa: E402
import froster.ops.triton_residual_projection as trp  # noqa: E402
from froster.ops import _fused_kernels, _gemm_kernels  # noqa: E402
from froster.ops._launch import device_guard, interpreting, ticket_counter  # noqa: E402
from froster.ops.reference import residual_projection_loss_torch  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
KERNELS = {
    name: kernel
    for module in (_fused_kernels, _gemm_kernels)
    for name, kernel in vars(module).items()
    if name.endswith("_kernel") and hasattr(kernel, "run")
}
# aten ops that only allocate or re-describe memory: no device kernel behind them.
NO_KERNEL = {"empty", "empty_like", "empty_strided", "view", "_unsafe_view", "t", "transpose", "detach", "alias",
             "as_strided", "expand", "reshape", "new_empty", "new_empty_strided", "lift_fresh"}


class _AtenTrace(TorchDispatchMode):
    """aten ops dispatched outside Triton launches (the interpreter copies through torch ops)."""

    def __init__(self):
        super().__init__()
        self.ops: list[str] = []
        self.in_launch = False

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if not self.in_launch:
            self.ops.append(func.overloadpacket.__name__)
        return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def count_launches():
    """``{"triton": [kernel names], "torch": [aten ops that run a kernel]}`` of the block.

    Each kernel's ``run`` (what ``kernel[grid](...)`` calls, compiled or interpreted) is wrapped
    for the block; on a GPU, Triton's global launch hook must see as many launches.
    """
    record = {"triton": [], "torch": [], "hooked": 0}
    trace = _AtenTrace()

    def counted(name, run):
        def wrapper(*args, **kwargs):
            record["triton"].append(name)
            trace.in_launch = True
            try:
                return run(*args, **kwargs)
            finally:
                trace.in_launch = False

        return wrapper

    for name, kernel in KERNELS.items():
        kernel.run = counted(name, kernel.run)

    def global_hook(*args, **kwargs):
        record["hooked"] += 1

    if not interpreting():  # the interpreter never calls Triton's global launch hook
        triton.knobs.runtime.launch_enter_hook.add(global_hook)
    try:
        with trace:
            yield record
    finally:
        for kernel in KERNELS.values():
            del kernel.run  # the class's own method again
        if not interpreting():
            triton.knobs.runtime.launch_enter_hook.remove(global_hook)
    record["torch"] = [op for op in trace.ops if op not in NO_KERNEL]
    if not interpreting():
        assert record["hooked"] == len(record["triton"])


def froster_rows(n, d=512, requires_grad=("z", "w1", "w2")):
    """n unit rows of width d and a projector as FROSTER trains it (H = D, no biases)."""
    g = torch.Generator().manual_seed(0)
    z = F.normalize(torch.randn(n, d, generator=g), dim=-1).to(DEVICE)
    t = F.normalize(torch.randn(n, d, generator=g), dim=-1).to(DEVICE)
    w1 = (torch.randn(d, d, generator=g) * (2 / d) ** 0.5).to(DEVICE)
    w2 = (torch.randn(d, d, generator=g) * 0.02).to(DEVICE)
    args = {"z": z, "t": t, "w1": w1, "w2": w2}
    for name in requires_grad:
        args[name].requires_grad_()
    return args


def launches_of(path, args):
    ticket_counter(args["z"].device)  # allocated once per device and stream, before counting
    with count_launches() as forward:
        loss = trp.residual_projection_loss_triton(**args, path=path)
    grad = torch.tensor(2.7, device=loss.device)
    with count_launches() as backward:
        loss.backward(grad)
    return forward, backward


@pytest.mark.parametrize("n", [64, 400], ids=["64-frame-rows", "400-class-rows"])
def test_fused_is_one_launch_forward_and_two_backward(n):
    forward, backward = launches_of("fused", froster_rows(n))
    assert forward["triton"] == ["fused_forward_kernel"] and forward["torch"] == []
    assert backward["triton"] == ["fused_backward_rows_kernel", "fused_backward_weights_kernel"]
    assert backward["torch"] == []


def test_fused_with_a_frozen_projector_is_one_launch_backward():
    forward, backward = launches_of("fused", froster_rows(64, requires_grad=("z",)))
    assert forward["triton"] == ["fused_forward_kernel"] and forward["torch"] == []
    assert backward["triton"] == ["fused_backward_rows_kernel"] and backward["torch"] == []


def test_gemm_path_launches():
    """The path for wide features: two cuBLAS GEMMs around two Triton kernels, and so on back."""
    forward, backward = launches_of("gemm", froster_rows(64, d=64))
    assert forward["triton"] == ["bias_gelu_fwd_kernel", "residual_loss_kernel"]
    assert forward["torch"] == ["mm", "mm"]
    assert backward["triton"] == ["scale_kernel", "bias_gelu_bwd_kernel"]
    assert sorted(backward["torch"]) == ["addmm_", "mm", "mm", "mm"]


@pytest.mark.parametrize("path", ["fused", "gemm"])
def test_every_launch_runs_under_the_inputs_device(monkeypatch, path):
    """Triton launches on the current device; each launch must sit inside a guard for z's device."""
    guarded = []
    entered = []

    @contextlib.contextmanager
    def recording_guard(device):
        entered.append(device)
        guarded.append(device)
        try:
            yield
        finally:
            guarded.pop()

    for module in (fused_autograd, gemm_autograd):
        monkeypatch.setattr(module, "device_guard", recording_guard)
    launched_under = []
    hooks = {name: (lambda *a, **k: launched_under.append(guarded[-1] if guarded else None)) for name in KERNELS}
    for name, hook in hooks.items():
        KERNELS[name].add_pre_run_hook(hook)
    try:
        args = froster_rows(20, d=32)
        trp.residual_projection_loss_triton(**args, path=path).backward()
    finally:
        for name, hook in hooks.items():
            KERNELS[name].pre_run_hooks.remove(hook)
    assert len(launched_under) >= 3 and all(device == args["z"].device for device in launched_under)
    assert entered == [args["z"].device] * 2  # once forward, once backward


def test_device_guard_selects_the_tensors_gpu():
    guard = device_guard(torch.device("cuda", 1))
    assert isinstance(guard, torch.cuda.device) and guard.idx == 1
    assert isinstance(device_guard(torch.device("cpu")), contextlib.nullcontext)


def test_fused_out_of_resources_falls_back_to_gemm_once(monkeypatch):
    def out_of_resources(*args):
        raise triton.runtime.errors.OutOfResources(300000, 232448, "shared memory")

    monkeypatch.setattr(trp.FusedResidualProjectionLoss, "apply", out_of_resources)
    monkeypatch.setattr(trp, "_FUSED_TOO_BIG", set())
    args = {k: v.detach() for k, v in froster_rows(8, d=32).items()}
    with pytest.warns(RuntimeWarning, match="do not fit this GPU at D=32.*cuBLAS-GEMM path"):
        loss = trp.residual_projection_loss_triton(**args)
    torch.testing.assert_close(loss, residual_projection_loss_torch(**args))
    with warnings.catch_warnings():  # remembered: no second warning
        warnings.simplefilter("error")
        torch.testing.assert_close(trp.residual_projection_loss_triton(**args), loss)
    with pytest.raises(triton.runtime.errors.OutOfResources):
        trp.residual_projection_loss_triton(**args, path="fused")


class TestDispatch:
    def test_auto_on_cpu_uses_torch(self, monkeypatch):
        def fail(*args, **kwargs):
            raise AssertionError("impl='auto' must not pick Triton for CPU tensors")

        monkeypatch.setattr(trp, "residual_projection_loss_triton", fail)
        args = {k: v.detach().cpu() for k, v in froster_rows(5, d=8).items()}
        loss = dispatch.residual_projection_loss(**args, impl="auto")
        assert loss.item() == residual_projection_loss_torch(**args).item()

    @pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
    def test_triton_on_cpu_without_interpreter_raises(self, monkeypatch):
        monkeypatch.setenv("TRITON_INTERPRET", "0")
        args = {k: v.detach() for k, v in froster_rows(5, d=8).items()}
        with pytest.raises(RuntimeError, match="needs CUDA tensors.*impl='torch'"):
            dispatch.residual_projection_loss(**args, impl="triton")

    def test_bad_shapes_and_path_are_checked_before_launch(self):
        args = {k: v.detach() for k, v in froster_rows(5, d=8).items()}
        with pytest.raises(ValueError, match="path must be one of"):
            trp.residual_projection_loss_triton(**args, path="cublas")
        args["w2"] = args["w2"][:, :4]
        with pytest.raises(ValueError, match="w2"):
            trp.residual_projection_loss_triton(**args)

    def test_missing_triton_is_said_once_with_its_cause(self, monkeypatch):
        monkeypatch.setitem(sys.modules, "triton", None)  # makes `import triton` raise ImportError
        monkeypatch.setattr(dispatch, "_TRITON_CHECKED", False)
        monkeypatch.setattr(dispatch, "_TRITON_IMPORT_ERROR", None)
        with pytest.warns(RuntimeWarning, match=r"torch reference .* on CUDA because triton cannot be imported \((ModuleNotFound|Import)Error"):
            assert dispatch.triton_importable() is False
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert dispatch.triton_importable() is False  # said once
