// Every registered op is complete: a CPU reference, a WebGPU kernel, a gradient rule or an
// explicit `notDifferentiable` flag, and a test that runs it on WebGPU against the CPU reference
// (test/op-coverage.json, kept true by test/helpers/backends.ts; see test/helpers/op-coverage.ts).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import * as lib from '../node.js';
import { registeredOps } from '../node.js';
import { readManifest } from './helpers/op-coverage.js';

// Importing the whole library registers every op (engine, nn, uncertainty).
void lib;

const ops = [...registeredOps().values()];
const isView = (op: (typeof ops)[number]) => 'view' in op && op.view === true;

describe('op registry', () => {
  it('holds the library ops (sanity: the import above registered them)', () => {
    const names = ops.map((o) => o.name);
    for (const n of ['add', 'matmul', 'conv2d', 'sum', 'adamStep', 'sgdStep', 'moduleOutputHook']) expect(names).toContain(n);
  });

  it('every op has a CPU reference and a WebGPU kernel', () => {
    const bad = ops.filter((o) => typeof o.cpu !== 'function' || typeof o.webgpu !== 'function').map((o) => o.name);
    expect(bad, 'ops without a cpu or webgpu function').toEqual([]);
  });

  it('every op has exactly one of a gradient rule and a notDifferentiable flag', () => {
    const bad = ops
      .filter((o) => {
        const hasGrad = 'grad' in o && typeof o.grad === 'function';
        return hasGrad === (o.notDifferentiable === true);
      })
      .map((o) => o.name);
    expect(bad, 'ops with neither (or both) of grad and notDifferentiable').toEqual([]);
  });

  it('every op that runs a kernel is exercised on WebGPU against the CPU by a listed test file', () => {
    const manifest = readManifest();
    const root = new URL('../', import.meta.url);
    const missing = ops.filter((o) => !isView(o) && !(manifest[o.name]?.length)).map((o) => o.name);
    expect(missing, 'ops no WebGPU-vs-CPU test exercises (add a test and list it in test/op-coverage.json)').toEqual([]);
    const known = new Set(ops.map((o) => o.name));
    expect(Object.keys(manifest).filter((n) => !known.has(n)), 'manifest entries for ops that do not exist').toEqual([]);
    for (const [op, files] of Object.entries(manifest)) {
      for (const f of files) expect(existsSync(fileURLToPath(new URL(f, root))), `${op}: ${f} exists`).toBe(true);
    }
  });
});
