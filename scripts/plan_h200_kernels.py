#!/usr/bin/env python3
"""Kernel measurements on one H200 for the planner (issue 13): what one GPU can show.

    PYTHONUNBUFFERED=1 python3 scripts/plan_h200_kernels.py --out $OUT/plan-kernels-h200.json

Every timing: CUDA events around `reps` back-to-back calls after `warm` warm-ups, the median of `rounds`
such rounds divided by reps (so per-call host overhead is amortised: the GPU-side time of one kernel).

Groups (each row carries `group` and `set`: 'fit' or 'check', fixed here before anything was measured, by shape:
the check rows are other expert shapes / sequence lengths than the fit rows; nothing is chosen after measuring):

  gemm      dense GEMM y[M,N] = x[M,K] @ w[K,N] in bf16 (torch.mm) and FP8 e4m3 (torch._scaled_mm, per-tensor
            scales, bf16 output), over the expert shapes of the reference models (Qwen3-30B-A3B, Qwen3-235B-A22B,
            DeepSeek-V3, Mixtral, GPT-OSS-120B: w13 = H -> 2I, w2 = I -> H) and row counts 256 .. 16384
  grouped   grouped GEMM over G local experts (torch._grouped_mm, bf16; torch._scaled_grouped_mm FP8 rowwise
            when this torch has it), rows per expert R
  cast      bf16 -> fp8 e4m3 quantisation with an amax (per-tensor current scaling), the cost FP8 adds per operand
  sdpa      causal F.scaled_dot_product_attention forward and forward+backward per backend (flash, efficient,
            cudnn), GQA by expanded kv heads, [B, N, S, D]
  route     router GEMM [T,H]x[H,E] + fp32 softmax + top-k (fwd)
  permute   token permutation by expert: argsort of T*k expert ids + index_select of the rows [T*k, H] (fwd), and
            the unpermute: weighted index_add_ back to [T, H]
  copy      device-to-device copy (HBM bandwidth)
"""
import argparse
import json
import statistics
import sys

import torch
import torch.nn.functional as F

# expert shapes (name, hidden H, expert width I); w13: [H -> 2I], w2: [I -> H]
EXPERTS = [
    ("qwen3-30b", 2048, 768),
    ("qwen3-235b", 4096, 1536),
    ("deepseek-v3", 7168, 2048),
    ("mixtral-8x7b", 4096, 14336),
    ("gpt-oss-120b", 2880, 2880),
]
# the check set: GPT-OSS and Mixtral shapes (never in the fit), and the row count 2048 for every shape
CHECK_EXPERTS = {"gpt-oss-120b", "mixtral-8x7b"}
ROWS = [256, 1024, 2048, 4096, 16384]
CHECK_ROWS = {2048}

GROUPED = [
    # name, G local experts, rows per expert R, H, I
    ("qwen3-30b-g16", 16, 512, 2048, 768),
    ("qwen3-30b-g16-r2k", 16, 2048, 2048, 768),
    ("qwen3-235b-g4", 4, 2048, 4096, 1536),
    ("qwen3-235b-g16", 16, 1024, 4096, 1536),
    ("deepseek-v3-g4", 4, 1024, 7168, 2048),
    ("deepseek-v3-g32", 32, 256, 7168, 2048),
    ("gpt-oss-g4", 4, 2048, 2880, 2880),
    ("qwen3-235b-g8-r512", 8, 512, 4096, 1536),
]
CHECK_GROUPED = {"gpt-oss-g4", "qwen3-235b-g8-r512", "qwen3-30b-g16-r2k"}

SDPA = [
    # name, B, S, N heads, G kv heads, D
    ("qwen3-30b-s4k", 1, 4096, 32, 4, 128),
    ("qwen3-235b-s4k", 1, 4096, 64, 4, 128),
    ("llama-70b-s8k", 1, 8192, 64, 8, 128),
    ("mha-s2k", 2, 2048, 32, 32, 128),
    ("gpt-oss-s4k-d64", 1, 4096, 64, 8, 64),
    ("tp2-qwen3-235b-s4k", 1, 4096, 32, 2, 128),
]
CHECK_SDPA = {"gpt-oss-s4k-d64", "tp2-qwen3-235b-s4k"}

ROUTE = [
    # name, T, H, E, k
    ("qwen3-30b-t8k", 8192, 2048, 128, 8),
    ("qwen3-235b-t4k", 4096, 4096, 128, 8),
    ("deepseek-v3-t4k", 4096, 7168, 256, 8),
    ("mixtral-t8k", 8192, 4096, 8, 2),
    ("gpt-oss-t4k", 4096, 2880, 128, 4),
]
CHECK_ROUTE = {"gpt-oss-t4k", "mixtral-t8k"}


def timed(fn, warm=3, reps=10, rounds=5):
    for _ in range(warm):
        fn()
    torch.cuda.synchronize()
    out = []
    for _ in range(rounds):
        a = torch.cuda.Event(enable_timing=True)
        b = torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(reps):
            fn()
        b.record()
        torch.cuda.synchronize()
        out.append(a.elapsed_time(b) / reps)
    return statistics.median(out)  # ms


def fp8(x):
    """per-tensor current scaling: amax -> scale -> e4m3; returns (q, inverse scale as fp32 scalar tensor)"""
    amax = x.abs().amax().float().clamp(min=1e-12)
    s = 448.0 / amax
    return (x.float() * s).to(torch.float8_e4m3fn), (1.0 / s).reshape(())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--quick", action="store_true", help="few shapes (a smoke test)")
    args = ap.parse_args()
    dev = torch.device("cuda")
    torch.manual_seed(0)
    rows = []
    info = {"torch": torch.__version__, "device": torch.cuda.get_device_name(0), "cuda": torch.version.cuda}
    print(info, flush=True)
    bf = torch.bfloat16

    def add(group, name, set_, **kw):
        r = {"group": group, "name": name, "set": set_, **kw}
        rows.append(r)
        print(json.dumps(r), flush=True)

    experts = EXPERTS[:2] if args.quick else EXPERTS
    rowset = ROWS[:2] if args.quick else ROWS
    # ---- dense GEMMs, bf16 and fp8 -------------------------------------------------------------------------
    for (ename, H, I) in experts:
        for (wname, N, K) in (("w13", 2 * I, H), ("w2", H, I)):
            w = torch.randn(K, N, device=dev, dtype=bf) * 0.02  # [K, N]
            wq, ws = fp8(w)
            wqt = wq.t().contiguous().t()  # column-major [K, N] as _scaled_mm wants
            for M in rowset:
                x = torch.randn(M, K, device=dev, dtype=bf)  # [M, K]
                xq, xs = fp8(x)
                set_ = "check" if (ename in CHECK_EXPERTS or M in CHECK_ROWS) else "fit"
                t_bf = timed(lambda: torch.mm(x, w))
                try:
                    t_f8 = timed(lambda: torch._scaled_mm(xq, wqt, scale_a=xs, scale_b=ws, out_dtype=bf))
                except Exception as e:  # noqa: BLE001
                    t_f8 = None
                    print("scaled_mm failed:", e, file=sys.stderr)
                add("gemm", f"{ename}.{wname}.m{M}", set_, M=M, N=N, K=K, bf16_ms=t_bf, fp8_ms=t_f8)
                del x, xq
    # ---- casts (fp8 quantisation with amax) ----------------------------------------------------------------
    for n in ([2**22] if args.quick else [2**20, 2**22, 2**24, 2**26]):
        x = torch.randn(n, device=dev, dtype=bf)
        add("cast", f"cast.n{n}", "check" if n == 2**24 else "fit", elements=n, ms=timed(lambda: fp8(x)))
    # ---- grouped GEMMs -------------------------------------------------------------------------------------
    has_grouped = hasattr(torch, "_grouped_mm")
    has_sgrouped = hasattr(torch, "_scaled_grouped_mm")
    for (name, G, R, H, I) in (GROUPED[:2] if args.quick else GROUPED):
        if not has_grouped:
            break
        x = torch.randn(G * R, H, device=dev, dtype=bf)  # [G*R, H]
        w13 = torch.randn(G, H, 2 * I, device=dev, dtype=bf) * 0.02  # [G, H, 2I]
        w2 = torch.randn(G, I, H, device=dev, dtype=bf) * 0.02  # [G, I, H]
        offs = torch.arange(1, G + 1, device=dev, dtype=torch.int32) * R
        h = torch.randn(G * R, I, device=dev, dtype=bf)
        t13 = timed(lambda: torch._grouped_mm(x, w13, offs=offs))
        t2 = timed(lambda: torch._grouped_mm(h, w2, offs=offs))
        f13 = f2 = None
        if has_sgrouped:
            try:
                xq = x.to(torch.float8_e4m3fn)
                hq = h.to(torch.float8_e4m3fn)
                w13q = w13.transpose(-2, -1).contiguous().to(torch.float8_e4m3fn).transpose(-2, -1)  # [G, H, 2I] col-major
                w2q = w2.transpose(-2, -1).contiguous().to(torch.float8_e4m3fn).transpose(-2, -1)
                sx = torch.ones(G * R, device=dev, dtype=torch.float32)
                s13 = torch.ones(G, 2 * I, device=dev, dtype=torch.float32)
                s2 = torch.ones(G, H, device=dev, dtype=torch.float32)
                f13 = timed(lambda: torch._scaled_grouped_mm(xq, w13q, sx, s13, offs=offs, out_dtype=bf))
                f2 = timed(lambda: torch._scaled_grouped_mm(hq, w2q, sx, s2, offs=offs, out_dtype=bf))
            except Exception as e:  # noqa: BLE001
                print("scaled_grouped_mm failed:", e, file=sys.stderr)
                f13 = f2 = None
        add("grouped", name, "check" if name in CHECK_GROUPED else "fit", G=G, R=R, H=H, I=I,
            w13_bf16_ms=t13, w2_bf16_ms=t2, w13_fp8_ms=f13, w2_fp8_ms=f2)
        del x, w13, w2, h
    # ---- SDPA backends -------------------------------------------------------------------------------------
    from torch.nn.attention import SDPBackend, sdpa_kernel
    backends = {"flash": SDPBackend.FLASH_ATTENTION, "efficient": SDPBackend.EFFICIENT_ATTENTION,
                "cudnn": SDPBackend.CUDNN_ATTENTION}
    for (name, B, S, N, G, D) in (SDPA[:1] if args.quick else SDPA):
        q = torch.randn(B, N, S, D, device=dev, dtype=bf, requires_grad=True)  # [B, N, S, D]
        k = torch.randn(B, G, S, D, device=dev, dtype=bf, requires_grad=True)  # [B, G, S, D]
        v = torch.randn(B, G, S, D, device=dev, dtype=bf, requires_grad=True)
        go = torch.randn(B, N, S, D, device=dev, dtype=bf)
        for bname, be in backends.items():
            def fwd():
                ke = k.repeat_interleave(N // G, dim=1) if G != N else k
                ve = v.repeat_interleave(N // G, dim=1) if G != N else v
                with sdpa_kernel(be):
                    return F.scaled_dot_product_attention(q, ke, ve, is_causal=True)

            def fb():
                o = fwd()
                o.backward(go)
            try:
                with torch.no_grad():
                    tf = timed(fwd, reps=5)
                tfb = timed(fb, reps=3)
                # the kv expansion alone (part of every row above), timed to subtract
                with torch.no_grad():
                    tx = timed(lambda: (k.repeat_interleave(N // G, dim=1), v.repeat_interleave(N // G, dim=1))) if G != N else 0.0
            except Exception as e:  # noqa: BLE001
                print(f"sdpa {bname} {name} failed:", e, file=sys.stderr)
                continue
            add("sdpa", f"{name}.{bname}", "check" if name in CHECK_SDPA else "fit", backend=bname, B=B, S=S,
                N=N, G=G, D=D, fwd_ms=tf, fwd_bwd_ms=tfb, kv_expand_ms=tx)
        del q, k, v, go
    # ---- router and permutation ----------------------------------------------------------------------------
    for (name, T, H, E, K) in (ROUTE[:1] if args.quick else ROUTE):
        x = torch.randn(T, H, device=dev, dtype=bf)  # [T, H]
        wr = torch.randn(H, E, device=dev, dtype=bf) * 0.02  # [H, E]

        def route():
            p = torch.softmax((x @ wr).float(), dim=-1)  # [T, E]
            return torch.topk(p, K, dim=-1)
        t_route = timed(route)
        ids = torch.randint(0, E, (T * K,), device=dev)
        tok = torch.arange(T * K, device=dev) // K

        def permute():
            order = torch.argsort(ids, stable=True)
            return x.index_select(0, tok[order])  # [T*K, H]
        t_perm = timed(permute)
        y = torch.randn(T * K, H, device=dev, dtype=bf)
        wgt = torch.rand(T * K, 1, device=dev, dtype=bf)

        def unpermute():
            out = torch.zeros(T, H, device=dev, dtype=bf)
            out.index_add_(0, tok, y * wgt)
            return out
        t_unp = timed(unpermute)
        add("route", name, "check" if name in CHECK_ROUTE else "fit", T=T, H=H, E=E, K=K, route_ms=t_route,
            permute_ms=t_perm, unpermute_ms=t_unp)
    # ---- copy ----------------------------------------------------------------------------------------------
    a = torch.empty(2**28, device=dev, dtype=torch.uint8)
    b = torch.empty_like(a)
    t = timed(lambda: b.copy_(a))
    add("copy", "copy.256MiB", "fit", bytes=2**28, ms=t, tb_per_s=2 * 2**28 / (t * 1e-3) / 1e12)
    with open(args.out, "w") as f:
        json.dump({"info": info, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
