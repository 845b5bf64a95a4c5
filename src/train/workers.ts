/**
 * Data-parallel training on worker threads: every worker holds a copy of the model (loaded from the same checkpoint),
 * reads the current parameters from one shared buffer the main thread writes after each optimizer step, runs its
 * micro-batches with microStep, and writes its gradient into a shared buffer of its own, which the main thread adds
 * in a fixed order (so a run repeats exactly). Micro-batch i of a step goes to thread i mod W (0: the main thread);
 * micro-batches are never split, so the balance losses see the same tokens as on one thread.
 */
import { Worker } from 'node:worker_threads';
import type { MtpKind } from '../models/mtp.js';
import type { Grads } from '../tensor/grads.js';
import { getKernels } from '../tensor/index.js';
import { MoekitError } from '../util/errors.js';
import { compiledWorker } from '../util/worker-file.js';
import type { Batch } from './data.js';
import type { MicroResult, MicroSpec } from './micro.js';
import type { TrainableModel } from './model.js';

export interface WorkerInit {
  dir: string;
  names: string[];
  params: SharedArrayBuffer; // all parameters then all buffers, flat, in `names` order
  grads: SharedArrayBuffer; // this worker's gradient, parameters only
  /** the multi-token prediction weights the main thread loaded (TrainableModel.load's `mtp`) */
  mtp?: MtpKind;
}


interface Slot { worker: Worker; grads: Float32Array }

export class WorkerPool {
  private readonly flat: Float32Array;
  private constructor(private readonly slots: Slot[], private readonly tm: TrainableModel, params: SharedArrayBuffer) {
    this.flat = new Float32Array(params);
  }

  get size(): number {
    return this.slots.length;
  }

  /** start n workers on the model in `dir` (the one `tm` was loaded from, or any with the same tensors) */
  static async open(n: number, dir: string, tm: TrainableModel): Promise<WorkerPool> {
    const names = [...tm.params.keys(), ...tm.buffers.keys()];
    const total = [...tm.params.values(), ...tm.buffers.values()].reduce((s, p) => s + p.length, 0);
    const nGrad = [...tm.params.values()].reduce((s, p) => s + p.length, 0);
    const params = new SharedArrayBuffer(total * 4);
    const slots: Slot[] = [];
    for (let i = 0; i < n; i++) {
      const grads = new SharedArrayBuffer(nGrad * 4);
      const worker = new Worker(compiledWorker(import.meta.url, 'train/worker.js'), { workerData: { dir, names, params, grads, mtp: tm.model.weights.mtp?.kind } satisfies WorkerInit, env: { ...process.env, MOEKIT_THREADS: '1' } });
      await new Promise<void>((resolve, reject) => {
        worker.once('message', (m: { ready?: boolean; error?: string }) => (m.ready ? resolve() : reject(new MoekitError(`training worker: ${m.error}`))));
        worker.once('error', (e) => reject(new MoekitError(`training worker: ${e.message}`)));
      });
      slots.push({ worker, grads: new Float32Array(grads) });
    }
    return new WorkerPool(slots, tm, params);
  }

  /** hand micro-batches i ≢ 0 (mod W) to the workers; `results(g)` adds their gradients into g, in worker order */
  run(batches: Batch[], spec: MicroSpec, W: number, tm: TrainableModel): { results(g: Grads): Promise<MicroResult[]> } {
    let o = 0;
    for (const p of [...tm.params.values(), ...tm.buffers.values()]) { this.flat.set(p, o); o += p.length; }
    const pending = this.slots.map((s, w) => {
      const mine = batches.filter((_, i) => i % W === w + 1);
      return new Promise<MicroResult[]>((resolve, reject) => {
        s.worker.once('message', (m: { results?: MicroResult[]; error?: string }) => (m.results ? resolve(m.results) : reject(new MoekitError(`training worker: ${m.error}`))));
        s.worker.postMessage({ batches: mine, spec });
      });
    });
    return {
      results: async (g) => {
        const k = getKernels();
        const all: MicroResult[] = [];
        for (let w = 0; w < this.slots.length; w++) {
          all.push(...(await pending[w]));
          let off = 0;
          const src = this.slots[w].grads;
          for (const p of this.tm.params.values()) {
            k.addTo(g.of(p), src.subarray(off, off + p.length), p.length);
            off += p.length;
          }
        }
        return all;
      },
    };
  }

  async close(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}
