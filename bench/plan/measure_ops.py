#!/usr/bin/env python3
"""Measure one MoE layer and one causal attention block on one GPU (bf16, PyTorch).

Reference measurements for `moekit plan op` (src/plan/op.ts). Run on the H200 device machine:

    PYTHONUNBUFFERED=1 python3 bench/plan/measure_ops.py --out $OUT/plan-op-measurements.json

What is timed (CUDA events, warm-up then median of repeats; each repeat timed on its own):

MoE layer, T tokens, hidden H, E experts, top-k K, expert FFN width I, no EP:
  route    : logits = x @ W_router (H x E), softmax in fp32, top-k, renormalise the k weights
  dispatch : argsort of the T*K (token, expert) pairs by expert, bincount -> group offsets,
             gather of the token rows into expert-contiguous order (padded per group to a
             multiple of 16 rows when torch._grouped_mm needs aligned groups)
  experts  : SwiGLU experts as grouped GEMMs: h = x W1 (H -> 2I, gate|up), silu(gate)*up,
             y = h W2 (I -> H). Grouped GEMM = torch._grouped_mm (cuBLAS/CUTLASS grouped kernel)
             when this torch has it; the fallback (and the secondary 'loop' rows) is a Python
             loop of torch.matmul per expert.
  combine  : scale rows by their routing weight, index_add_ back to token order (T x H)
  fwd_bwd  : forward, then backward of a random output gradient, grads for x and all weights.

Attention block, batch B, sequence S, hidden H, N heads, G kv heads, head dim D:
  QKV projection (H -> (N + 2G) D), F.scaled_dot_product_attention(is_causal=True) on the
  flash backend (GQA via enable_gqa when supported, else kv heads expanded), output
  projection (N D -> H).

Calibration: dense bf16 GEMMs of several sizes and a device-to-device copy, so the roofline
ceilings used by the planner can be checked against the same machine.
"""
import argparse
import json
import math
import statistics
import sys
import time

MOE_SHAPES = [
    # name, T, H, E, K, I   (coarse -> fine-grained)
    ("mixtral-8x7b", 8192, 4096, 8, 2, 14336),
    ("mixtral-8x22b", 4096, 6144, 8, 2, 16384),
    ("coarse-e16-k4", 8192, 4096, 16, 4, 6144),
    ("qwen2-57b-a14b", 8192, 3584, 64, 8, 2560),
    ("deepseek-v2-lite", 16384, 2048, 64, 6, 1408),
    ("olmoe-1b-7b", 8192, 2048, 64, 8, 1024),
    ("qwen3-30b-a3b", 16384, 2048, 128, 8, 768),
    ("qwen3-235b-a22b", 8192, 4096, 128, 8, 1536),
    ("deepseek-v3", 8192, 7168, 256, 8, 2048),
    ("deepseek-v3-t2k", 2048, 7168, 256, 8, 2048),
    ("fine-e256-i512", 8192, 4096, 256, 8, 512),
    ("e64-k4-t2k", 2048, 4096, 64, 4, 1408),
]

ATTN_SHAPES = [
    # name, B, S, H, N, G, D
    ("llama3-8b-s4k", 2, 4096, 4096, 32, 8, 128),
    ("llama3-70b-s8k", 1, 8192, 8192, 64, 8, 128),
    ("qwen3-30b-s2k", 4, 2048, 2048, 32, 4, 128),
    ("mha-5120-s4k", 1, 4096, 5120, 40, 40, 128),
    ("mha-2048-s1k", 8, 1024, 2048, 16, 16, 128),
]

# held-out shapes: measured after the constants were fitted on the sets above, never used in the fit
HOLDOUT_MOE_SHAPES = [
    ("deepseek-v2", 4096, 5120, 160, 6, 1536),
    ("e32-k4-t16k", 16384, 4096, 32, 4, 4096),
    ("olmoe-t1k", 1024, 2048, 64, 8, 1024),
    ("e64-k4-h6144", 8192, 6144, 64, 4, 3072),
    ("e8-k2-t32k", 32768, 2048, 8, 2, 8192),
    ("e128-k8-h3072", 8192, 3072, 128, 8, 1024),
]
HOLDOUT_ATTN_SHAPES = [
    ("gqa-4096-s16k", 1, 16384, 4096, 32, 8, 128),
    ("mha-4096-s512", 16, 512, 4096, 32, 32, 128),
    ("gqa-7168-s4k", 2, 4096, 7168, 56, 8, 128),
]

GEMM_SHAPES = [(8192, 8192, 8192), (4096, 4096, 4096), (2048, 4096, 4096), (512, 4096, 4096),
               (128, 4096, 4096), (1024, 2048, 7168), (256, 2048, 7168), (64, 2048, 7168)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="plan-op-measurements.json")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="first shapes only, few repeats")
    ap.add_argument("--set", choices=["fit", "holdout", "all"], default="fit", help="which shape set (holdout: never used in the fit)")
    args = ap.parse_args()

    import torch
    import torch.nn.functional as F

    dev = torch.device("cuda")
    torch.manual_seed(0)
    dt = torch.bfloat16
    reps, warm = (3, 1) if args.quick else (args.reps, args.warmup)

    def timed(fn, reps=reps, warm=warm, marks=0):
        """median ms of fn(); fn may take a list of events to record phase boundaries."""
        for _ in range(warm):
            fn(None)
        torch.cuda.synchronize()
        totals, phases = [], []
        for _ in range(reps):
            evs = [torch.cuda.Event(enable_timing=True) for _ in range(marks + 2)]
            evs[0].record()
            fn(evs[1:-1] if marks else None)
            evs[-1].record()
            torch.cuda.synchronize()
            totals.append(evs[0].elapsed_time(evs[-1]))
            if marks:
                phases.append([evs[i].elapsed_time(evs[i + 1]) for i in range(marks + 1)])
        out = {"median_ms": statistics.median(totals), "min_ms": min(totals)}
        if marks:
            out["phases_ms"] = [statistics.median(p[i] for p in phases) for i in range(marks + 1)]
        return out

    info = {"torch": torch.__version__, "device": torch.cuda.get_device_name(0),
            "reps": reps, "warmup": warm, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    print(json.dumps(info), flush=True)

    # ---------------- calibration: GEMMs and copy ----------------
    calib = {"gemm": [], "copy": None}
    for (m, n, k) in GEMM_SHAPES:
        a = torch.randn(m, k, device=dev, dtype=dt)
        b = torch.randn(k, n, device=dev, dtype=dt)
        r = timed(lambda _e: a @ b)
        tf = 2 * m * n * k / (r["median_ms"] * 1e-3) / 1e12
        calib["gemm"].append({"m": m, "n": n, "k": k, "ms": r["median_ms"], "tflops": tf})
        print(f"gemm {m}x{n}x{k}: {r['median_ms']:.3f} ms {tf:.0f} TFLOP/s", flush=True)
    src = torch.empty(2 * 1024**3, dtype=torch.uint8, device=dev)
    dst = torch.empty_like(src)
    r = timed(lambda _e: dst.copy_(src))
    calib["copy"] = {"bytes_moved": 2 * src.numel(), "ms": r["median_ms"],
                     "tb_per_s": 2 * src.numel() / (r["median_ms"] * 1e-3) / 1e12}
    print(f"copy: {calib['copy']['tb_per_s']:.2f} TB/s (read+write)", flush=True)
    del src, dst

    # per-kernel overhead of eager PyTorch on this machine: a chain of tiny dependent ops, each one kernel,
    # issued from Python without synchronising; the GPU work is negligible, so the time per op is the host's
    # dispatch + launch cost that an eager layer of small kernels pays
    tiny = torch.zeros(16, device=dev, dtype=dt)
    n_ops = 400

    def chain(_e):
        t = tiny
        for _ in range(n_ops):
            t = t * 1.0001
        return t
    r = timed(chain, reps=10, warm=2)
    calib["launch_us"] = 1e3 * r["median_ms"] / n_ops
    print(f"eager per-kernel overhead: {calib['launch_us']:.1f} us", flush=True)

    # ---------------- grouped GEMM support ----------------
    gmm = getattr(torch, "_grouped_mm", None)
    gmm_mode = None  # 'unpadded' | 'padded' | None

    def try_gmm(pad):
        E, H, N = 4, 256, 512
        counts = [5, 17, 0, 42] if not pad else [16, 32, 0, 48]
        M = sum(counts)
        x = torch.randn(M, H, device=dev, dtype=dt, requires_grad=True)
        w = torch.randn(E, N, H, device=dev, dtype=dt, requires_grad=True)
        offs = torch.tensor([sum(counts[: i + 1]) for i in range(E)], device=dev, dtype=torch.int32)
        y = gmm(x, w.transpose(-2, -1), offs=offs)
        ref, s = [], 0
        for e, c in enumerate(counts):
            ref.append(x[s:s + c] @ w[e].t()); s += c
        ref = torch.cat(ref)
        err = (y.float() - ref.float()).abs().max().item()
        y.backward(torch.randn_like(y))  # not y.sum(): its expanded (stride-0) grad is rejected
        assert err < 1.0, f"grouped_mm mismatch {err}"
        assert w.grad is not None and x.grad is not None
        return True

    if gmm is not None:
        for mode in ("unpadded", "padded"):
            try:
                try_gmm(mode == "padded"); gmm_mode = mode; break
            except Exception as ex:  # noqa: BLE001
                print(f"grouped_mm {mode}: {type(ex).__name__}: {str(ex)[:200]}", flush=True)
    info["grouped_mm"] = gmm_mode or "unavailable (loop fallback)"
    print(f"grouped_mm mode: {info['grouped_mm']}", flush=True)

    # ---------------- MoE layer ----------------
    def moe_layer(T, H, E, K, I, impl):
        x = torch.randn(T, H, device=dev, dtype=dt, requires_grad=True)
        wr = (torch.randn(H, E, device=dev, dtype=dt) / math.sqrt(H)).requires_grad_()
        w1 = (torch.randn(E, 2 * I, H, device=dev, dtype=dt) / math.sqrt(H)).requires_grad_()
        w2 = (torch.randn(E, H, I, device=dev, dtype=dt) / math.sqrt(I)).requires_grad_()
        params = [x, wr, w1, w2]
        align = 16 if (impl == "grouped" and gmm_mode == "padded") else 1

        def fwd(ev):
            # route
            logits = x @ wr
            probs = torch.softmax(logits.float(), dim=-1)
            topw, topi = torch.topk(probs, K, dim=-1)
            topw = (topw / topw.sum(-1, keepdim=True)).to(dt)
            if ev: ev[0].record()
            # dispatch
            flat_e = topi.reshape(-1)
            order = torch.argsort(flat_e, stable=True)
            tok = order // K
            counts = torch.bincount(flat_e, minlength=E)
            if align > 1:
                padded = (counts + align - 1) // align * align
                pstart = torch.cumsum(padded, 0) - padded
                start = torch.cumsum(counts, 0) - counts
                se = flat_e[order]
                dest = pstart[se] + torch.arange(order.numel(), device=dev) - start[se]
                total = int(padded.sum().item())
                xs = x.new_zeros(total, H)
                xs = xs.index_copy(0, dest, x[tok])
                offs = torch.cumsum(padded, 0).to(torch.int32)
            else:
                xs = x[tok]
                offs = torch.cumsum(counts, 0).to(torch.int32)
            if ev: ev[1].record()
            # experts
            if impl == "grouped":
                h = gmm(xs, w1.transpose(-2, -1), offs=offs)
                g, u = h.chunk(2, dim=-1)
                a = F.silu(g) * u
                ys = gmm(a, w2.transpose(-2, -1), offs=offs)
            else:
                # split/unbind (not xs[s:s+c], w1[e]): their backward is one cat/stack, where
                # slicing's backward would write a full-size zero tensor per expert
                cl = counts.tolist()
                outs = []
                for xe, w1e, w2e in zip(xs.split(cl), w1.unbind(0), w2.unbind(0)):
                    h = xe @ w1e.t()
                    g, u = h.chunk(2, dim=-1)
                    outs.append((F.silu(g) * u) @ w2e.t())
                ys = torch.cat(outs)
            if ev: ev[2].record()
            # combine
            if align > 1:
                ys = ys[dest]
            wsorted = topw.reshape(-1)[order]
            y = torch.zeros(T, H, device=dev, dtype=dt).index_add(0, tok, ys * wsorted[:, None])
            return y

        gout = torch.randn(T, H, device=dev, dtype=dt)

        def fwd_only(ev):
            with torch.no_grad():
                fwd(ev)

        def fwd_bwd(_ev):
            for p in params:
                p.grad = None
            y = fwd(None)
            y.backward(gout)

        rf = timed(fwd_only, marks=3)
        rb = timed(fwd_bwd)
        del x, wr, w1, w2, params
        return rf, rb

    results = {"info": info, "calibration": calib, "moe_layer": [], "attention": []}
    moe_set = {"fit": MOE_SHAPES, "holdout": HOLDOUT_MOE_SHAPES, "all": MOE_SHAPES + HOLDOUT_MOE_SHAPES}[args.set]
    attn_set = {"fit": ATTN_SHAPES, "holdout": HOLDOUT_ATTN_SHAPES, "all": ATTN_SHAPES + HOLDOUT_ATTN_SHAPES}[args.set]
    holdout_names = {x[0] for x in HOLDOUT_MOE_SHAPES + HOLDOUT_ATTN_SHAPES}
    info["set"] = args.set
    shapes = moe_set[:2] if args.quick else moe_set
    for (name, T, H, E, K, I) in shapes:
        # the per-expert loop is launch-bound for many experts; keep it as a secondary row for coarse ones
        for impl in (["grouped"] if gmm_mode else []) + (["loop"] if ((E <= 16 and name not in holdout_names) or not gmm_mode) else []):
            try:
                rf, rb = moe_layer(T, H, E, K, I, impl)
                row = {"name": name, "set": "holdout" if name in holdout_names else "fit", "impl": impl, "tokens": T, "hidden": H, "experts": E, "top_k": K,
                       "expert_ffn": I, "fwd_ms": rf["median_ms"], "fwd_bwd_ms": rb["median_ms"],
                       "fwd_phases_ms": dict(zip(["route", "dispatch", "experts", "combine"], rf["phases_ms"]))}
                results["moe_layer"].append(row)
                print(json.dumps(row), flush=True)
            except Exception as ex:  # noqa: BLE001
                print(f"moe {name} {impl} failed: {type(ex).__name__}: {str(ex)[:300]}", flush=True)
            torch.cuda.empty_cache()

    # ---------------- attention block ----------------
    from torch.nn.attention import SDPBackend, sdpa_kernel

    def attn_block(B, S, H, N, G, D):
        x = torch.randn(B, S, H, device=dev, dtype=dt, requires_grad=True)
        wqkv = (torch.randn((N + 2 * G) * D, H, device=dev, dtype=dt) / math.sqrt(H)).requires_grad_()
        wo = (torch.randn(H, N * D, device=dev, dtype=dt) / math.sqrt(N * D)).requires_grad_()
        params = [x, wqkv, wo]
        mode = {"gqa": None}

        def fwd(_ev):
            qkv = x @ wqkv.t()
            q, k, v = qkv.split([N * D, G * D, G * D], dim=-1)
            q = q.view(B, S, N, D).transpose(1, 2)
            k = k.view(B, S, G, D).transpose(1, 2)
            v = v.view(B, S, G, D).transpose(1, 2)
            with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
                if G != N and mode["gqa"] != "expand":
                    try:
                        o = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
                        mode["gqa"] = "enable_gqa"
                    except Exception:  # noqa: BLE001
                        mode["gqa"] = "expand"
                if G == N or mode["gqa"] == "expand":
                    if G != N:
                        k = k.repeat_interleave(N // G, dim=1)
                        v = v.repeat_interleave(N // G, dim=1)
                    o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            o = o.transpose(1, 2).reshape(B, S, N * D)
            return o @ wo.t()

        gout = torch.randn(B, S, H, device=dev, dtype=dt)

        def fwd_only(ev):
            with torch.no_grad():
                fwd(ev)

        def fwd_bwd(_ev):
            for p in params:
                p.grad = None
            fwd(None).backward(gout)

        rf = timed(fwd_only)
        rb = timed(fwd_bwd)
        return rf, rb, mode["gqa"] or "mha"

    ashapes = attn_set[:1] if args.quick else attn_set
    for (name, B, S, H, N, G, D) in ashapes:
        try:
            rf, rb, gq = attn_block(B, S, H, N, G, D)
            row = {"name": name, "set": "holdout" if name in holdout_names else "fit", "batch": B, "seq": S, "hidden": H, "heads": N, "kv_heads": G, "head_dim": D,
                   "fwd_ms": rf["median_ms"], "fwd_bwd_ms": rb["median_ms"], "gqa": gq}
            results["attention"].append(row)
            print(json.dumps(row), flush=True)
        except Exception as ex:  # noqa: BLE001
            print(f"attention {name} failed: {type(ex).__name__}: {str(ex)[:300]}", flush=True)
        torch.cuda.empty_cache()

    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)
    print(f"wrote {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
