/**
 * What one architecture file provides: which config.json it reads, how it normalises it, and
 * its tensor-name table (as a loader over a TensorSource, so the same code lists, validates
 * and loads). Everything else (forward, generation, tracing) is shared.
 */
import type { ConfigReader } from '../io/config.js';
import type { ArchName, ModelDesc } from './desc.js';
import type { LayerWeights, TensorSource } from './weights.js';

export interface ArchSpec {
  name: ArchName;
  /** config.json `model_type` values this file handles */
  modelTypes: string[];
  describe(c: ConfigReader): ModelDesc;
  /** the weights of decoder layer l, read by Hugging Face name */
  loadLayer(src: TensorSource, d: ModelDesc, l: number): LayerWeights;
}
