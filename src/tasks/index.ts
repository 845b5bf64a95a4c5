/** The built-in corpus: tasks, the held-out split, the training stream and the tokenizer (docs/tasks.md). */
export * from './types.js';
export { TASKS, selectTasks, taskByName, taskOfPrompt } from './registry.js';
export { BUCKETS, heldOut, isHeldOut, hashString } from './split.js';
export { MODALITIES, TEXT, IMAGE, corpus, exampleAt, tokenizeExample, type CorpusExample, type CorpusOptions } from './corpus.js';
export * as tokenizer from './tokenizer.js';
export { writeTokenizer, VOCAB_SIZE } from './tokenizer.js';
export * as glyphs from './glyphs.js';
