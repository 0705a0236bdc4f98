#!/usr/bin/env node
// Reads vitest's JSON report and prints ONE line: `tests: P passed, F failed[, S skipped]`.
// A test file that failed without any failing test (import error, failing hook) counts as one
// failure, so that a broken file can never read as "0 failed".
// Exit code: 0 when nothing failed and vitest reported success, 1 otherwise.
// Usage: node scripts/ci-summary.mjs <vitest-report.json>
import { existsSync, readFileSync } from 'node:fs';

const file = process.argv[2];
if (!file || !existsSync(file)) {
  console.log(`no vitest report at ${file ?? '<none>'}`);
  console.log('tests: 0 passed, 1 failed');
  process.exit(1);
}
const r = JSON.parse(readFileSync(file, 'utf8'));
let passed = 0, failed = 0, skipped = 0;
const brokenFiles = [];
for (const f of r.testResults ?? []) {
  let fileFailed = 0;
  for (const t of f.assertionResults ?? []) {
    if (t.status === 'passed') passed++;
    else if (t.status === 'failed') { failed++; fileFailed++; }
    else skipped++; // pending, skipped, todo, disabled
  }
  if (f.status === 'failed' && fileFailed === 0) {
    failed++;
    brokenFiles.push(`${f.name}: ${(f.message || 'failed').split('\n')[0]}`);
  }
}
for (const b of brokenFiles) console.log(`failed file: ${b}`);
const ok = failed === 0 && r.success !== false;
if (!ok && failed === 0) failed = 1; // vitest said the run failed (e.g. an unhandled error)
console.log(`tests: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(ok ? 0 : 1);
