#!/usr/bin/env python3
"""Per-kernel cost eager and inside a CUDA graph, on one GPU (the simulator's graph_launch_s, src/plan/fitted.ts).

Run on the H200 device machine:

    PYTHONUNBUFFERED=1 python3 bench/plan/measure_graph_gap.py --out $OUT/plan-graph-gap-h200.json

What is timed (CUDA events around the whole chain, after warm-up; median of repeats):
  tiny    : a chain of N in-place adds on a 256-element bf16 tensor: the kernels do almost no work, so the chain's
            time per kernel is the launch cost. Eager: the host issues each kernel (PyTorch dispatch + cudaLaunchKernel);
            graph: the chain captured once with torch.cuda.CUDAGraph and replayed (the GPU walks the graph).
  experts : a chain of per-expert GEMMs as Transformer Engine's GroupedLinear runs them (one GEMM per expert:
            rows x hidden @ hidden x 2*ffn, bf16), eager and captured; and the same GEMMs' own time, from the graph
            with the tiny-kernel gap taken off, so gap = (eager - graph) per kernel on a real shape.
The simulator uses the tiny chain's per-kernel time inside a graph as the cost of one captured kernel launch.
"""
import argparse
import json
import statistics

import torch


def timed(fn, repeats):
    ts = []
    for _ in range(repeats):
        a = torch.cuda.Event(enable_timing=True)
        b = torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        ts.append(a.elapsed_time(b) * 1e-3)
    return statistics.median(ts)


def chain(make, n, repeats):
    """median seconds per kernel of `n` launches of make(), eager and replayed from a CUDA graph"""
    eager = lambda: [make() for _ in range(n)]
    for _ in range(3):
        eager()
    t_eager = timed(eager, repeats) / n
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            eager()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        eager()
    for _ in range(3):
        g.replay()
    t_graph = timed(g.replay, repeats) / n
    return t_eager, t_graph


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--repeats", type=int, default=21)
    args = ap.parse_args()
    dev = torch.device("cuda")
    out = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "cuda": torch.version.cuda, "rows": []}
    x = torch.zeros(256, dtype=torch.bfloat16, device=dev)
    for n in (200, 1000):
        e, g = chain(lambda: x.add_(1), n, args.repeats)
        out["rows"].append({"kind": "tiny", "n": n, "eager_s_per_kernel": e, "graph_s_per_kernel": g})
        print(f"tiny n={n}: eager {e*1e6:.2f} us/kernel, graph {g*1e6:.2f} us/kernel", flush=True)
    for (rows, hidden, ffn) in ((256, 2048, 768), (512, 2048, 768), (256, 4096, 1536), (128, 7168, 2048)):
        a = torch.randn(rows, hidden, dtype=torch.bfloat16, device=dev)
        w = [torch.randn(hidden, 2 * ffn, dtype=torch.bfloat16, device=dev) for _ in range(16)]
        o = torch.empty(rows, 2 * ffn, dtype=torch.bfloat16, device=dev)
        i = [0]

        def one():
            torch.matmul(a, w[i[0] % 16], out=o)
            i[0] += 1

        e, g = chain(one, 160, args.repeats)
        flops = 2 * rows * hidden * 2 * ffn
        out["rows"].append({"kind": "experts", "rows": rows, "hidden": hidden, "ffn": ffn, "n": 160, "eager_s_per_kernel": e, "graph_s_per_kernel": g, "flops": flops})
        print(f"expert GEMM {rows}x{hidden}x{2*ffn}: eager {e*1e6:.2f} us, graph {g*1e6:.2f} us ({flops/g/1e12:.0f} TFLOP/s in graph)", flush=True)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
