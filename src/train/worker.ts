/**
 * A data-parallel training worker (see workers.ts): loads the model, then per message copies the shared parameters
 * in, runs its micro-batches and writes the summed gradient into its shared buffer.
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
  parentPort!.postMessage({ ready: true });
  parentPort!.on('message', (m: { batches: Batch[]; spec: MicroSpec }) => {
    try {
      let o = 0;
      for (const a of arrays) { a.set(params.subarray(o, o + a.length)); o += a.length; }
      const g = new Grads(tm.params.values());
      const results: MicroResult[] = m.batches.map((b) => microStep(tm.model, b, m.spec, g));
      let off = 0;
      for (const p of tm.params.values()) {
        const gp = g.get(p);
        if (gp) grads.set(gp, off); else grads.fill(0, off, off + p.length);
        off += p.length;
      }
      parentPort!.postMessage({ results });
    } catch (e) {
      parentPort!.postMessage({ error: (e as Error).message });
    }
  });
} catch (e) {
  parentPort!.postMessage({ error: (e as Error).message });
}
