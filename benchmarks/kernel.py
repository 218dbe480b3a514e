"""Residual-projection loss: forward+backward time and peak memory, four implementations.

    python benchmarks/kernel.py             # CUDA: N in 64, 400 (K text rows), 512, 4096; D in 512, 768; bf16, fp16
    python benchmarks/kernel.py --quick     # fewer cases and repetitions
    python benchmarks/kernel.py --device cpu --no-compile

Compares, in one run on one device, ``impl="torch"`` (eager), ``torch.compile`` of the torch
reference, the Triton op as dispatched (``triton``: the fused kernels wherever they apply) and
its cuBLAS-GEMM path (``triton_gemm``) on ``loss.backward(2.7)`` with H = D, and prints beside
each shape its roofline bound from a small table of peak figures keyed by the device name. Each
case appends one row to ``--out`` (default benchmarks/results/kernel.csv) with the device name,
versions and date, as soon as it is measured. Without a GPU only eager and compile run (on CPU,
small grid): the Triton interpreter is a test tool, not a performance path, so GPU figures are
"not measured on GPU".
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

# benchmarks/ is a folder of scripts, not a package: make the shared harness importable.
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from _harness import PeakMemory, append_results_csv, machine_info, markdown_table, time_fn  # noqa: E402
from froster.ops import residual_projection_loss, residual_projection_loss_torch  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "kernel.csv"
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
# Dense peak figures from the vendors' data sheets: (name, {dtype: TFLOP/s}, TB/s). fp32 is the
# non-tensor-core rate (torch's default for fp32 matmuls is full fp32, not TF32).
PEAKS = [
    ("H100 PCIe", {"bf16": 756.0, "fp16": 756.0, "fp32": 51.0}, 2.0),
    ("H100", {"bf16": 989.0, "fp16": 989.0, "fp32": 67.0}, 3.35),  # SXM
    ("H200", {"bf16": 989.0, "fp16": 989.0, "fp32": 67.0}, 4.8),
    ("A100", {"bf16": 312.0, "fp16": 312.0, "fp32": 19.5}, 2.039),  # SXM 80GB
]
COLUMNS = [
    ("n", "N", ""), ("d", "D", ""), ("dtype", "dtype", ""),
    ("eager_ms", "eager ms", ".3f"), ("compile_ms", "compile ms", ".3f"), ("triton_ms", "triton ms", ".3f"),
    ("triton_gemm_ms", "triton gemm-path ms", ".3f"),
    ("eager_over_triton", "eager/triton", ".2f"), ("compile_over_triton", "compile/triton", ".2f"),
    ("eager_over_compile", "eager/compile", ".2f"),
    ("eager_peak_mb", "eager MB", ".1f"), ("compile_peak_mb", "compile MB", ".1f"),
    ("triton_peak_mb", "triton MB", ".1f"),
    ("roofline_ms", "roofline ms", ".4f"), ("triton_roofline_fraction", "roofline / triton", ".2f"),
]


def peak_for(device_name: str):
    """The first table entry whose name is in the device name; H100 SXM when none matches."""
    for name, flops, bandwidth in PEAKS:
        if all(word in device_name for word in name.split()):
            return name, flops, bandwidth, False
    name, flops, bandwidth = PEAKS[1]
    return name, flops, bandwidth, True


def roofline(n: int, d: int, h: int, dtype: str, flops_table: dict, tb_per_s: float) -> dict:
    """Lower bound on the fwd+bwd time from FLOPs and compulsory memory traffic.

    FLOPs: forward 2 GEMMs ``2 * N*D*H * 2``; backward 4 GEMMs (dh, dw1, dw2, dz), twice that.
    Bytes (element size e): z and t read, w1 and w2 read, dz, dw1, dw2 written, and what must
    cross from forward to backward (pre-activation (N, H) and d loss / d z' (N, D)) written once
    and read once: ``e * (3*N*D + 4*D*H + 2*N*H + 2*N*D)``. Element-wise FLOPs are ignored.
    """
    e = torch.finfo(DTYPES[dtype]).bits // 8
    flops = 3 * (2 * n * d * h * 2)
    nbytes = e * (3 * n * d + 4 * d * h + 2 * n * h + 2 * n * d)
    ms = max(flops / (flops_table[dtype] * 1e12), nbytes / (tb_per_s * 1e12)) * 1e3
    return {"flops": flops, "bytes": nbytes, "roofline_ms": ms}


def make_step(impl: str, n: int, d: int, dtype: torch.dtype, device: str, kind: str):
    """One ``loss.backward(2.7)`` with fresh gradients; FROSTER-like inputs, H = D."""
    g = torch.Generator(device="cpu").manual_seed(0)
    z = torch.nn.functional.normalize(torch.randn(n, d, generator=g), dim=-1)
    t = torch.nn.functional.normalize(torch.randn(n, d, generator=g), dim=-1)
    w1, w2 = torch.randn(d, d, generator=g) * (2 / d) ** 0.5, torch.randn(d, d, generator=g) * 0.02
    leaves = [x.to(device, dtype).requires_grad_() for x in (z, w1, w2)]
    t = t.to(device, dtype)
    grad = torch.tensor(2.7, device=device)
    if impl == "compile":
        # One graph, no silent fallback to eager: fullgraph, and room for every shape's recompile.
        fn = torch.compile(residual_projection_loss_torch, dynamic=False, fullgraph=True)
    elif impl == "triton_gemm":
        from froster.ops.triton_residual_projection import residual_projection_loss_triton

        def fn(*args, **kw):
            return residual_projection_loss_triton(*args, **kw, path="gemm")
    else:
        def fn(*args, **kw):
            return residual_projection_loss(*args, **kw, impl="torch" if impl == "eager" else "triton")

    def step():
        for leaf in leaves:
            leaf.grad = None
        fn(leaves[0], t, leaves[1], leaves[2], alpha=0.1, kind=kind).backward(grad)

    return step


def measure(step, device: str, quick: bool) -> tuple[float, float]:
    """Median ms of ``step`` and its peak memory in MB above what was allocated before it."""
    step()  # compiles (torch.compile, Triton) outside the timed region
    if device == "cuda":
        import triton.testing

        ms = triton.testing.do_bench(step, warmup=10 if quick else 25, rep=40 if quick else 100)
    else:
        ms = time_fn(step, warmup=2, steps=5 if quick else 20)["median_ms"]
    with PeakMemory(device) as memory:
        step()
    return ms, memory.peak_mb


def cases(device: str, quick: bool, dtypes: list[str], ns=None, ds=None):
    """(N, D, dtype) in the order measured: the goal shapes (D = 512, N = 512 then 64) first."""
    if device == "cuda":
        default_ns, default_ds = ([512, 64, 4096], [512]) if quick else ([512, 64, 400, 4096], [512, 768])
    else:  # a small CPU comparison: torch.compile costs tens of seconds per case here
        default_ns, default_ds = ([64, 512], [512]) if quick else ([64, 400, 512], [512])
    return [(n, d, dt) for dt in dtypes for d in (ds or default_ds) for n in (ns or default_ns)]


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cuda", "cpu"])
    parser.add_argument("--dtypes", default=None,
                        help="comma-separated, of fp32,bf16,fp16 (default: bf16,fp16 on CUDA, fp32 on CPU)")
    parser.add_argument("--ns", type=_ints, default=None, help="rows N, comma-separated (default: see above)")
    parser.add_argument("--ds", type=_ints, default=None, help="feature dims D = H, comma-separated")
    parser.add_argument("--time-budget-s", type=float, default=None,
                        help="start no new case after this many seconds (rows measured so far are kept)")
    parser.add_argument("--kind", default="cosine", choices=["cosine", "l2"])
    parser.add_argument("--quick", action="store_true", help="fewer cases and repetitions")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile (slow to compile on CPU)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's); 1 gives steadier CPU figures on a busy machine")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"CSV to append to (default {RESULTS})")
    args = parser.parse_args(argv)

    device = args.device
    if device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but no CUDA device is available")
    if args.threads:
        torch.set_num_threads(args.threads)
    dtypes = (args.dtypes or ("bf16,fp16" if device == "cuda" else "fp32")).split(",")
    if any(d not in DTYPES for d in dtypes):
        parser.error(f"--dtypes: {args.dtypes!r}; choose from {', '.join(DTYPES)}")
    impls = ["eager"] + ([] if args.no_compile else ["compile"]) + (["triton", "triton_gemm"] if device == "cuda" else [])
    if not args.no_compile:
        limit = "recompile_limit" if hasattr(torch._dynamo.config, "recompile_limit") else "cache_size_limit"
        setattr(torch._dynamo.config, limit, 64)
    machine = machine_info(device)
    print(f"device: {machine['device_name']}; torch {machine['torch']}, triton {machine['triton']}; "
          f"{machine['torch_threads']} torch threads, load average {machine.get('load_avg_1m')}")
    if device == "cuda":
        peak_name, flops_table, bandwidth, guessed = peak_for(machine["device_name"])
        print(f"roofline assumes {peak_name} peaks: {flops_table} TFLOP/s dense, {bandwidth} TB/s"
              + (" (device not in the table: a guess)" if guessed else ""))
    else:
        print("Triton GPU timings: not measured on GPU (no CUDA device); comparing eager and compile on CPU")

    keys = ("device_name", "torch", "triton", "cuda", "driver", "git_commit", "date_utc", "torch_threads", "load_avg_1m")
    stamp = {k: machine.get(k) for k in keys}
    stamp["status"] = "measured" if device == "cuda" else "CPU only: Triton not measured on GPU"
    rows, started = [], time.monotonic()
    for n, d, dtype in tqdm(cases(device, args.quick, dtypes, args.ns, args.ds), desc="cases", unit="case"):
        if args.time_budget_s is not None and time.monotonic() - started > args.time_budget_s:
            tqdm.write(f"time budget of {args.time_budget_s:g} s spent: N={n} D={d} {dtype} and later cases not measured")
            break
        row = {"n": n, "d": d, "h": d, "dtype": dtype, "kind": args.kind}
        for impl in impls:
            step = make_step(impl, n, d, DTYPES[dtype], device, args.kind)
            try:
                row[f"{impl}_ms"], row[f"{impl}_peak_mb"] = measure(step, device, args.quick)
            except Exception as err:  # e.g. no C++ compiler for torch.compile: say so in the row
                row[f"{impl}_error"] = f"{type(err).__name__}: {err}".splitlines()[0][:200]
                tqdm.write(f"N={n} D={d} {dtype} {impl}: {row[f'{impl}_error']}")
            del step
        for a, b in (("eager", "triton"), ("compile", "triton"), ("eager", "compile")):
            if row.get(f"{a}_ms") and row.get(f"{b}_ms"):
                row[f"{a}_over_{b}"] = row[f"{a}_ms"] / row[f"{b}_ms"]
        if device == "cuda":
            row.update(roofline(n, d, d, dtype, flops_table, bandwidth), peak_assumed=peak_name)
            if row.get("triton_ms"):
                row["triton_roofline_fraction"] = row["roofline_ms"] / row["triton_ms"]
        rows.append(row)
        append_results_csv(args.out, [{**stamp, "device": device, "quick": args.quick, **row}])

    print(markdown_table(rows, COLUMNS))
    if device == "cuda":
        report_targets(rows)
    print(f"appended {len(rows)} rows to {args.out}")
    return 0


def report_targets(rows) -> None:
    """The project's goals for the fused op, read off the rows of this run."""
    def find(n, d, dtype):
        return next((r for r in rows if (r["n"], r["d"], r["dtype"]) == (n, d, dtype)), None)

    target = find(512, 512, "bf16")
    if target and target.get("triton_ms"):
        print(f"N=512 D=512 bf16: eager/triton {target.get('eager_over_triton', float('nan')):.2f} (goal >= 3), "
              f"compile/triton {target.get('compile_over_triton', float('nan')):.2f} (goal >= 1.3)")
    small = find(64, 512, "bf16")
    if small and small.get("triton_ms"):
        print(f"N=64 D=512 bf16: eager/triton {small.get('eager_over_triton', float('nan')):.2f} (goal >= 5)")
    for r in rows:
        if r.get("triton_peak_mb") is not None and r.get("eager_peak_mb") is not None \
                and r["triton_peak_mb"] > r["eager_peak_mb"]:
            print(f"N={r['n']} D={r['d']} {r['dtype']}: triton peak {r['triton_peak_mb']:.1f} MB above eager "
                  f"{r['eager_peak_mb']:.1f} MB (target: not higher)")
    for r in rows:
        if r["n"] == 4096 and r.get("triton_roofline_fraction"):
            print(f"N=4096 D={r['d']} {r['dtype']}: triton achieves {r['triton_roofline_fraction']:.2f} of the roofline bound")


if __name__ == "__main__":
    sys.exit(main())
