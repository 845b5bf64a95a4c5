/**
 * The model's thread: serves the model of workerData (src/runtime/host.ts) on the worker's parentPort. Started by
 * openModel (src/runtime/remote.ts), which holds the other end.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { serveModel, type WorkerInit } from './host.js';

export type { FromWorker, ModelInfo, ToWorker, WorkerInit } from './host.js';

if (parentPort) serveModel(parentPort, workerData as WorkerInit);
