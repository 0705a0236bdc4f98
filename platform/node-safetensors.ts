/**
 * Node-only file helpers for safetensors (the codec itself, `nn/serialize/safetensors.ts`, is
 * browser-safe); exported from `node.ts`.
 */
import { readFile, rename, writeFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Tensor } from '../engine/index.js';
import { type DecodedSafetensors, type SafetensorsInput, decodeSafetensors, encodeSafetensors } from '../nn/serialize/safetensors.js';

/** Encodes `tensors` and writes them to `path` (atomically: a temp file renamed into place). */
export async function saveSafetensors(path: string, tensors: Record<string, SafetensorsInput | Tensor>, metadata?: Record<string, string>): Promise<void> {
  const bytes = await encodeSafetensors(tensors, metadata);
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  await writeFile(tmp, bytes);
  await rename(tmp, path);
}

/** Reads and decodes a safetensors file (FormatError messages are prefixed with the path). */
export async function loadSafetensors(path: string): Promise<DecodedSafetensors> {
  const bytes = await readFile(path);
  try {
    return decodeSafetensors(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (e) {
    if (e instanceof Error) e.message = `${path}: ${e.message}`;
    throw e;
  }
}
