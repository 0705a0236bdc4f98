/**
 * Which test file exercises each op on WebGPU against the CPU reference.
 *
 * test/op-coverage.json maps every op that runs a kernel (all registered ops except `view` ops,
 * which never reach a backend) to the test files that run it on WebGPU and compare with the CPU.
 * Two checks keep it true, both deterministic and independent of test-file order:
 *  - test/op-registry.test.ts (static): every such op has at least one file, and every listed
 *    file exists;
 *  - the `afterAll` of test/helpers/backends.ts (runtime, in each file's own process): every op
 *    the manifest attributes to the file must have run on the WebGPU backend during the file
 *    (`WebGPUBackend.opsRun`). Checked when CI is set (WebGPU is then mandatory and the whole file
 *    runs; a local run filtered with -t would run fewer tests).
 * Setting DUBITO_OP_COVERAGE_OUT=<dir> makes each file also write the ops it ran to
 * <dir>/<file>.json, to find which files can vouch for a new op.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const MANIFEST_PATH = fileURLToPath(new URL('../op-coverage.json', import.meta.url));

/** op name → test files (relative to the repository root, e.g. `test/pooling.test.ts`). */
export function readManifest(): Record<string, string[]> {
  return JSON.parse(readFileSync(MANIFEST_PATH, 'utf8')) as Record<string, string[]>;
}

/** Ops the manifest attributes to `testPath` that are missing from `ran`. */
export function unmetClaims(testPath: string, ran: ReadonlySet<string>): string[] {
  const file = relative(ROOT, testPath).split('\\').join('/');
  return Object.entries(readManifest())
    .filter(([op, files]) => files.includes(file) && !ran.has(op))
    .map(([op]) => op);
}

/** Writes the ops a file ran on WebGPU (DUBITO_OP_COVERAGE_OUT set). */
export function recordRun(testPath: string, ran: ReadonlySet<string>): void {
  const dir = process.env.DUBITO_OP_COVERAGE_OUT;
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${dir}/${basename(testPath)}.json`, JSON.stringify([...ran].sort()));
}
