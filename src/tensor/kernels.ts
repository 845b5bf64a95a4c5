import type { QuantType } from './quant.js';

/**
 * The kernel interface. Every tensor is a row-major Float32Array; offsets are expressed by
 * passing `subarray` views. Two implementations: `reference` (plain TypeScript, slow and
 * obvious, src/tensor/ref/) and `native` (N-API addon over OpenBLAS + hand-written C++,
 * native/). Tests hold native to reference on random shapes.
 */
export interface Kernels {
  readonly name: 'native' | 'reference';
  /**
   * C[M,N] = alpha · op(A)[M,K] · op(B)[K,N] + beta · C[M,N].
   * A is [M,K] with row stride lda, or [K,M] when transA; B is [K,N] with row stride ldb, or
   * [N,K] when transB. C has row stride ldc. beta = 0 ignores C's old contents (NaN-safe).
   * A linear layer y[T,N] = x[T,K] · W[N,K]ᵀ is sgemm(false, true, T, N, K, 1, x, K, W, K, 0, y, N).
   */
  sgemm(transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
        A: Float32Array, lda: number, B: Float32Array, ldb: number, beta: number,
        C: Float32Array, ldc: number): void;
  /** y[N] = alpha · W[N,K] · x[K] + beta · y[N]  (W row-major, contiguous) */
  sgemv(N: number, K: number, alpha: number, W: Float32Array, x: Float32Array, beta: number,
        y: Float32Array): void;
  /** in place, row-wise softmax of x[rows, cols] (max-subtracted, exact exp) */
  softmax(x: Float32Array, rows: number, cols: number): void;
  /**
   * Decode attention of one sequence: out[nH, Dv], head h (kv head h / (nH / nKv)) attending keys
   * [lo, S) of its cache: softmax(scale · q_h · K[kvh, lo:S]ᵀ, and with sinks one extra logit sinks[h]
   * that carries no value) · V[kvh, lo:S]. q [nH, Dk]; K [nKv, cap, Dk], V [nKv, cap, Dv].
   */
  attnDecode(q: Float32Array, K: Float32Array, V: Float32Array, out: Float32Array, nH: number, nKv: number, cap: number,
             Dk: number, Dv: number, lo: number, S: number, scale: number, sinks: Float32Array | null): void;
  /**
   * attnDecode for B = Ks.length sequences of one layer, each over its own cache (a batched decode step):
   * q [B, nH, Dk], out [B, nH, Dv]; Ks[b] [nKv, cap_b, Dk], Vs[b] [nKv, cap_b, Dv]; meta [B, 3] = (cap_b, lo_b, S_b).
   * One call per layer instead of one per sequence; the native kernel splits the sequences over its threads.
   * With kNew [B, nKv, Dk] and vNew [B, nKv, Dv], sequence b's new key and value heads are first written at position
   * S_b − 1 of its cache (the step's cache write, fused).
   */
  attnDecodeBatch(q: Float32Array, Ks: Float32Array[], Vs: Float32Array[], meta: Int32Array, out: Float32Array, nH: number, nKv: number,
                  Dk: number, Dv: number, scale: number, sinks: Float32Array | null, kNew?: Float32Array | null, vNew?: Float32Array | null): void;
  /**
   * Optional (native only): the routed experts of one MoE block and their combine in one call, for inference.
   * For each expert e, rows order[offsets[e] .. offsets[e+1]): gather x [n_e, H], gate and up [I, H], the activation
   * (SwiGLU, or gpt-oss's clamped form when `clamped`), down [H, I], then out[token] += weights[a] · y. ws [3E] holds
   * each expert's gate, up and down weights (Float32Array, or Uint16Array of bf16 bits; null for an expert with no
   * rows, or Uint8Array of q8_0 / q4_0 blocks with qtypes[i] = 0 / 1, else -1), bs [3E] their biases or null, widths
   * [E] its I. Its reference is moe/layer.ts's per-expert loop, which makes the same kernel calls in the same order,
   * so the two agree bit for bit.
   */
  expertsForward?(x: Float32Array, N: number, H: number, K: number, order: Int32Array, offsets: Int32Array, weights: Float32Array,
                  out: Float32Array, clamped: boolean, limit: number, alpha: number, ws: (Float32Array | Uint16Array | Uint8Array | null)[],
                  bs: (Float32Array | null)[], widths: Int32Array, qtypes?: Int32Array): void;
  /** out[rows, dim] = x / sqrt(mean(x²) + eps) · w   (w null → 1). out may alias x. */
  rmsnorm(out: Float32Array, x: Float32Array, w: Float32Array | null, rows: number, dim: number,
          eps: number): void;
  /**
   * Rotary embedding in place on x viewed as [rows, stride]: columns [off, off + rotDim) of row r
   * are rotated with the angles of position row p = floor(r / rowsPerPos) of cos/sin [P, rotDim/2].
   * interleaved: pairs (2i, 2i+1) use angle i (GPT-J / ERNIE / DeepSeek `rope_interleave`);
   * otherwise pairs (i, i + rotDim/2) (NeoX / Llama `rotate_half`).
   */
  rope(x: Float32Array, rows: number, stride: number, off: number, rotDim: number,
       cos: Float32Array, sin: Float32Array, rowsPerPos: number, interleaved: boolean): void;
  /** out[n] = silu(gate[n]) · up[n]; out may alias gate or up */
  swiglu(out: Float32Array, gate: Float32Array, up: Float32Array, n: number): void;
  /**
   * gpt-oss clamped SwiGLU: g = min(gate, limit); u = clamp(up, -limit, limit);
   * out = (u + 1) · g · sigmoid(alpha · g). out may alias gate or up.
   */
  swigluClamped(out: Float32Array, gate: Float32Array, up: Float32Array, n: number,
                limit: number, alpha: number): void;
  /**
   * Per row of x[rows, cols]: the k largest values, in descending order (ties → lower index
   * first), written to idx[rows, k] and val[rows, k].
   */
  topk(x: Float32Array, rows: number, cols: number, k: number, idx: Int32Array,
       val: Float32Array): void;
  /**
   * dst[n] = src[n] widened from bfloat16: src holds raw bf16 bit patterns (a Uint16Array, as
   * stored in BF16 checkpoints) and each f32 result is exactly `bits << 16` (NaN payloads,
   * infinities, subnormals and -0 kept bit for bit).
   */
  bf16ToF32(dst: Float32Array, src: Uint16Array, n: number): void;
  /**
   * y[N] = alpha · W[N,K] · x[K] + beta · y[N] with W row-major bf16 bits (Uint16Array,
   * contiguous, row stride K): the decode-time GEMV over weights kept in memory as bf16.
   * beta = 0 ignores y's old contents (NaN-safe); alpha = 0 or K = 0 never reads W or x.
   */
  sgemvBf16(N: number, K: number, alpha: number, W: Uint16Array, x: Float32Array, beta: number,
            y: Float32Array): void;
  /**
   * C[M,N] = alpha · A[M,K] · W[N,K]ᵀ + beta · C[M,N]: a linear layer with bf16 weights.
   * A (f32) has row stride lda, W (bf16 bits, Uint16Array) row stride ldw, C row stride ldc.
   * beta = 0 ignores C's old contents (NaN-safe); alpha = 0 or K = 0 never reads A or W.
   * y[T,N] = x[T,K] · W[N,K]ᵀ is sgemmBf16(T, N, K, 1, x, K, W, K, 0, y, N).
   */
  sgemmBf16(M: number, N: number, K: number, alpha: number, A: Float32Array, lda: number,
            W: Uint16Array, ldw: number, beta: number, C: Float32Array, ldc: number): void;
  // ---- block-quantised weights (src/tensor/quant.ts; native/quant.cc; reference: ref/quant.ts) ----
  /** dst = the n / 32 blocks of src[n] by llama.cpp's reference rounding (src/tensor/quant.ts quantize, bit for bit) */
  quantize(type: QuantType, dst: Uint8Array, src: Float32Array, n: number): void;
  /** dst[n] = the values of the first n / 32 blocks of src (exact); n a multiple of 32 */
  dequantize(type: QuantType, dst: Float32Array, src: Uint8Array, n: number): void;
  /**
   * C[M,N] = A[M,K] · W[N,K]ᵀ with W rows of K/32 `type` blocks (row stride K/32 blocks) and each row of A
   * quantised to 8 bits per 32-value block for the integer dot products (ref/quant.ts quantizeActs);
   * A row stride lda, C row stride ldc; C is overwritten. K a multiple of 32.
   */
  qgemm(type: QuantType, M: number, N: number, K: number, A: Float32Array, lda: number, W: Uint8Array,
        C: Float32Array, ldc: number): void;
  // ---- training (native/train.cc; references: ref/train.ts, bit for bit) ----
  /** dx[rows, dim] += RMSNorm backward of dy (rstd recomputed from x, in f32); dw[dim] += Σ_rows dy ⊙ x · rstd */
  rmsnormBackward(dx: Float32Array, dy: Float32Array, x: Float32Array, w: Float32Array | null, dw: Float32Array | null,
                  rows: number, dim: number, eps: number): void;
  /** a = silu(g) · u: du[n] = da · silu(g), dg[n] = da · u · silu'(g) */
  swigluBackward(dg: Float32Array, du: Float32Array, da: Float32Array, g: Float32Array, u: Float32Array, n: number): void;
  /** in place per row of dp, p [rows, ld], first n columns: dp = p ⊙ (dp − Σ p ⊙ dp) */
  softmaxBackward(dp: Float32Array, p: Float32Array, rows: number, n: number, ld: number): void;
  /** one AdamW update of n elements (train/adamw.ts gives the constants) */
  adamw(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, n: number, b1: number, b2: number,
        stepSize: number, bc2: number, eps: number, wd: number): void;
  /** dst[n] += src[n] */
  addTo(dst: Float32Array, src: Float32Array, n: number): void;
  /** x[n] *= s (float64 product, one rounding) */
  scale(x: Float32Array, n: number, s: number): void;
  /** acc + Σ x[i]² (float64, in order) */
  sumSquares(x: Float32Array, n: number, acc: number): number;
  /** MoE dispatch: y[r − lo] = x[order[r] / K] (rows of [·, H]) */
  gatherRows(y: Float32Array, x: Float32Array, H: number, K: number, order: Int32Array, lo: number, hi: number): void;
  /** its backward: dx[order[r] / K] += dxe[r − lo] */
  scatterRows(dx: Float32Array, dxe: Float32Array, H: number, K: number, order: Int32Array, lo: number, hi: number): void;
  /** MoE combine: out[a / K] += w[a] · y[r − lo], a = order[r] */
  combineRows(out: Float32Array, y: Float32Array, H: number, K: number, w: Float32Array, order: Int32Array, lo: number, hi: number): void;
  /** its backward: dw[a] = dy[a / K] · y[r − lo], dye[r − lo] = w[a] · dy[a / K] */
  combineRowsBackward(dw: Float32Array, dye: Float32Array, dy: Float32Array, y: Float32Array, H: number, K: number,
                      w: Float32Array, order: Int32Array, lo: number, hi: number): void;
}
