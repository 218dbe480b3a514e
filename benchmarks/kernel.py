"""Fused residual-distillation loss: forward+backward time and peak memory, three implementations.

    python benchmarks/kernel.py             # CUDA: N in 64, 400 (K text rows), 512, 4096; D in 512, 768
    python benchmarks/kernel.py --quick     # fewer cases and repetitions
    python benchmarks/kernel.py --device cpu --no-compile

Compares, in one run on one device, ``impl="torch"`` (eager), ``torch.compile`` of the torch
reference and ``impl="triton"`` (the fused kernels) on ``(loss * 2.7).backward()`` with H = D,
and prints beside each shape its roofline bound from a small table of peak figures keyed by the
device name. Each case appends one row to benchmarks/results/kernel.csv with the device name,
versions and date. Without a GPU only eager and compile run (on CPU, small grid): the Triton
interpreter is a test tool, not a performance path, so GPU figures are "not measured on GPU".
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

# benchmarks/ is a folder of scripts, not a package: make the shared harness importable.
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from _harness import PeakMemory, append_results_csv, machine_info, markdown_table, time_fn  # noqa: E402
from froster.ops import residual_distill_loss, residual_distill_loss_torch  # noqa: E402

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
    ("eager_over_triton", "eager/triton", ".2f"), ("compile_over_triton", "compile/triton", ".2f"),
    ("eager_over_compile", "eager/compile", ".2f"),
    ("eager_peak_mb", "eager MB", ".1f"), ("compile_peak_mb", "compile MB", ".1f"),
    ("triton_peak_mb", "triton MB", ".1f"),
    ("roofline_ms", "roofline ms", ".4f"), ("triton_over_roofline", "triton/roofline", ".2f"),
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
    """One ``(loss * 2.7).backward()`` with fresh gradients; FROSTER-like inputs, H = D."""
    g = torch.Generator(device="cpu").manual_seed(0)
    z = torch.nn.functional.normalize(torch.randn(n, d, generator=g), dim=-1)
    t = torch.nn.functional.normalize(torch.randn(n, d, generator=g), dim=-1)
    w1, w2 = torch.randn(d, d, generator=g) * (2 / d) ** 0.5, torch.randn(d, d, generator=g) * 0.02
    leaves = [x.to(device, dtype).requires_grad_() for x in (z, w1, w2)]
    t = t.to(device, dtype)
    if impl == "compile":
        torch._dynamo.reset()  # one compiled graph per case, never a silent fallback to eager
        fn = torch.compile(residual_distill_loss_torch, dynamic=False)
    else:
        def fn(*args, **kw):
            return residual_distill_loss(*args, **kw, impl=impl)

    def step():
        for leaf in leaves:
            leaf.grad = None
        (fn(leaves[0], t, leaves[1], leaves[2], alpha=0.1, kind=kind) * 2.7).backward()

    return step


def measure(step, device: str, quick: bool) -> tuple[float, float]:
    """Median ms of ``step`` and its peak memory in MB above what was allocated before it."""
    step()  # compiles (torch.compile, Triton) outside the timed region
    if device == "cuda":
        import triton.testing

        ms = triton.testing.do_bench(step, warmup=10 if quick else 25, rep=50 if quick else 200)
    else:
        ms = time_fn(step, warmup=2, steps=5 if quick else 20)["median_ms"]
    with PeakMemory(device) as memory:
        step()
    return ms, memory.peak_mb


def cases(device: str, quick: bool, dtypes: list[str]):
    if device == "cuda":
        ns, ds = ([512, 4096], [512]) if quick else ([64, 400, 512, 4096], [512, 768])
    else:  # a small CPU comparison: torch.compile costs tens of seconds per case here
        ns, ds = ([64, 512], [512]) if quick else ([64, 400, 512], [512])
    return [(n, d, dt) for dt in dtypes for d in ds for n in ns]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cuda", "cpu"])
    parser.add_argument("--dtypes", default=None,
                        help="comma-separated, of fp32,bf16,fp16 (default: fp32,bf16 on CUDA, fp32 on CPU)")
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
    dtypes = (args.dtypes or ("fp32,bf16" if device == "cuda" else "fp32")).split(",")
    impls = ["eager"] + ([] if args.no_compile else ["compile"]) + (["triton"] if device == "cuda" else [])
    machine = machine_info(device)
    print(f"device: {machine['device_name']}; torch {machine['torch']}, triton {machine['triton']}; "
          f"{machine['torch_threads']} torch threads, load average {machine.get('load_avg_1m')}")
    if device == "cuda":
        peak_name, flops_table, bandwidth, guessed = peak_for(machine["device_name"])
        print(f"roofline assumes {peak_name} peaks: {flops_table} TFLOP/s dense, {bandwidth} TB/s"
              + (" (device not in the table: a guess)" if guessed else ""))
    else:
        print("Triton GPU timings: not measured on GPU (no CUDA device); comparing eager and compile on CPU")

    rows = []
    for n, d, dtype in tqdm(cases(device, args.quick, dtypes), desc="cases", unit="case"):
        row = {"n": n, "d": d, "h": d, "dtype": dtype, "kind": args.kind}
        for impl in impls:
            step = make_step("torch" if impl == "eager" else impl, n, d, DTYPES[dtype], device, args.kind)
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
                row["triton_over_roofline"] = row["triton_ms"] / row["roofline_ms"]
        rows.append(row)

    print(markdown_table(rows, COLUMNS))
    if device == "cuda":
        report_targets(rows)
    keys = ("device_name", "torch", "triton", "git_commit", "date_utc", "torch_threads", "load_avg_1m")
    stamp = {k: machine.get(k) for k in keys}
    stamp["status"] = "measured" if device == "cuda" else "CPU only: Triton not measured on GPU"
    path = append_results_csv(args.out, [{**stamp, "device": device, "quick": args.quick, **row} for row in rows])
    print(f"appended {len(rows)} rows to {path}")
    return 0


def report_targets(rows) -> None:
    """The project's targets for the fused op, checked on the rows of this run."""
    def find(n, d, dtype):
        return next((r for r in rows if (r["n"], r["d"], r["dtype"]) == (n, d, dtype)), None)

    target = find(512, 512, "bf16")
    if target and target.get("triton_ms"):
        print(f"N=512 D=512 bf16: eager/triton {target.get('eager_over_triton', float('nan')):.2f} (target >= 3), "
              f"compile/triton {target.get('compile_over_triton', float('nan')):.2f} (target >= 1.3)")
    for r in rows:
        if r.get("triton_peak_mb") is not None and r.get("eager_peak_mb") is not None \
                and r["triton_peak_mb"] > r["eager_peak_mb"]:
            print(f"N={r['n']} D={r['d']} {r['dtype']}: triton peak {r['triton_peak_mb']:.1f} MB above eager "
                  f"{r['eager_peak_mb']:.1f} MB (target: not higher)")
    for r in rows:
        if r["n"] == 4096 and r.get("triton_over_roofline"):
            print(f"N=4096 D={r['d']} {r['dtype']}: triton at {r['triton_over_roofline']:.2f}x roofline (target <= 2)")


if __name__ == "__main__":
    sys.exit(main())
