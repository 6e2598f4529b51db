/**
 * Input/output: the safetensors reader/writer (pure) and the file helpers
 * (atomic writes, checkpoints, byte corpora, reports).
 *
 * @module
 */
export * from "./safetensors.ts";
export * from "./fs.ts";
