/**
 * Mean next-token cross-entropy. logits [N = B·T, V]; position t of each sequence predicts the
 * id at t + 1, so the last position of every sequence has no target (B·(T − 1) terms).
 */

export interface CeSaved {
  probs: Float32Array; // [N, V] softmax of the logits
  targets: Int32Array; // [N] next id, −1 where none
  count: number; // number of targets
  V: number;
}

/** targets [N] for ids [B, T]: ids[b, t + 1], −1 at t = T − 1 */
export function nextTokenTargets(ids: Int32Array, B: number, T: number): Int32Array {
  const tg = new Int32Array(B * T).fill(-1);
  for (let b = 0; b < B; b++) for (let t = 0; t + 1 < T; t++) tg[b * T + t] = ids[b * T + t + 1];
  return tg;
}

/** loss = mean over targets of −log softmax(logits)[target] (float64 accumulation) */
export function crossEntropyForward(logits: Float32Array, targets: Int32Array, N: number, V: number): { loss: number; s: CeSaved } {
  const probs = new Float32Array(N * V);
  let sum = 0, count = 0;
  for (let n = 0; n < N; n++) {
    const o = n * V;
    let mx = -Infinity;
    for (let j = 0; j < V; j++) mx = Math.max(mx, logits[o + j]);
    let z = 0;
    for (let j = 0; j < V; j++) z += Math.exp(logits[o + j] - mx);
    for (let j = 0; j < V; j++) probs[o + j] = Math.exp(logits[o + j] - mx) / z;
    const t = targets[n];
    if (t < 0) continue;
    sum += Math.log(z) + mx - logits[o + t];
    count++;
  }
  return { loss: sum / count, s: { probs, targets, count, V } };
}

/** dlogits[N, V] += (softmax − onehot(target)) / count on rows with a target */
export function crossEntropyBackward(dlogits: Float32Array, s: CeSaved): void {
  const { probs, targets, count, V } = s;
  for (let n = 0; n < targets.length; n++) {
    const t = targets[n];
    if (t < 0) continue;
    const o = n * V;
    for (let j = 0; j < V; j++) dlogits[o + j] += probs[o + j] / count;
    dlogits[o + t] -= 1 / count;
  }
}

/**
 * Distillation: mean over counted rows of KL(teacher ‖ student) = Σ_v p_t (log p_t − log p_s), teacher and
 * student logits [N, V]; rows with a target (targets ≥ 0) count. Returns the loss and d loss / d student logits
 * (p_s − p_t) / count; the teacher gets no gradient.
 */
export function klDivergence(student: Float32Array, teacher: Float32Array, targets: Int32Array, N: number, V: number): { loss: number; dlogits: Float32Array } {
  const dl = new Float32Array(N * V);
  let count = 0;
  for (const t of targets) if (t >= 0) count++;
  if (count === 0) return { loss: 0, dlogits: dl };
  let sum = 0;
  const ps = new Float64Array(V), pt = new Float64Array(V);
  const softmax = (x: Float32Array, o: number, p: Float64Array) => {
    let mx = -Infinity;
    for (let j = 0; j < V; j++) mx = Math.max(mx, x[o + j]);
    let z = 0;
    for (let j = 0; j < V; j++) { p[j] = Math.exp(x[o + j] - mx); z += p[j]; }
    for (let j = 0; j < V; j++) p[j] /= z;
  };
  for (let n = 0; n < N; n++) {
    if (targets[n] < 0) continue;
    const o = n * V;
    softmax(student, o, ps);
    softmax(teacher, o, pt);
    for (let j = 0; j < V; j++) {
      if (pt[j] > 0) sum += pt[j] * (Math.log(pt[j]) - Math.log(Math.max(ps[j], 1e-300)));
      dl[o + j] = (ps[j] - pt[j]) / count;
    }
  }
  return { loss: sum / count, dlogits: dl };
}
