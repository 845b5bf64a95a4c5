/**
 * Typed progress events, as transformers.js reports them: initiate → progress {loaded, total}
 * → done → ready. The terminal bar, the server and the dashboard consume the same events.
 */
export type ProgressEvent =
  | { status: 'initiate'; task: string; total: number }
  | { status: 'progress'; task: string; loaded: number; total: number; item?: string }
  | { status: 'done'; task: string; total: number }
  | { status: 'ready'; task: string; seconds: number };

export type ProgressCallback = (ev: ProgressEvent) => void;
