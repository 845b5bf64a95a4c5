/**
 * Typed progress events, as transformers.js reports them: initiate → progress {loaded, total}
 * → done → ready. The terminal bar, the server and the dashboard consume the same events.
 * A lazy expert store adds 'expert' events while the model runs: an expert read from the checkpoint
 * or evicted, its bytes, and the bytes held (all layers) after it against the budget.
 */
export type ProgressEvent =
  | { status: 'initiate'; task: string; total: number }
  | { status: 'progress'; task: string; loaded: number; total: number; item?: string }
  | { status: 'done'; task: string; total: number }
  | { status: 'ready'; task: string; seconds: number }
  | { status: 'expert'; action: 'load' | 'evict'; layer: number; expert: number; bytes: number; resident: number; budget: number };

export type ProgressCallback = (ev: ProgressEvent) => void;
