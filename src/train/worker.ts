/**
 * A data-parallel training worker (see workers.ts): loads the model, then per message copies the shared parameters
 * in, runs its micro-batches and accumulates their gradient straight into its shared buffer.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Grads } from '../tensor/grads.js';
import { microStep, type MicroResult, type MicroSpec } from './micro.js';
import { TrainableModel } from './model.js';
import type { Batch } from './data.js';
import type { WorkerInit } from './workers.js';

const init = workerData as WorkerInit;
try {
  const tm = TrainableModel.load(init.dir, { mtp: init.mtp });
  const names = [...tm.params.keys(), ...tm.buffers.keys()];
  if (names.join('\n') !== init.names.join('\n')) throw new Error('the worker loaded other parameters than the main thread');
  const arrays = [...tm.params.values(), ...tm.buffers.values()];
  const params = new Float32Array(init.params), grads = new Float32Array(init.grads);
  // the gradient accumulates straight into the shared buffer, one view per parameter (in `names` order)
  const views: [Float32Array, Float32Array][] = [];
  let at = 0;
  for (const p of tm.params.values()) { views.push([p, grads.subarray(at, at + p.length)]); at += p.length; }
  parentPort!.postMessage({ ready: true });
  parentPort!.on('message', (m: { batches: Batch[]; spec: MicroSpec }) => {
    try {
      let o = 0;
      for (const a of arrays) { a.set(params.subarray(o, o + a.length)); o += a.length; }
      grads.fill(0);
      const g = new Grads(tm.params.values(), views);
      const results: MicroResult[] = m.batches.map((b) => microStep(tm.model, b, m.spec, g));
      parentPort!.postMessage({ results });
    } catch (e) {
      parentPort!.postMessage({ error: (e as Error).message });
    }
  });
} catch (e) {
  parentPort!.postMessage({ error: (e as Error).message });
}
