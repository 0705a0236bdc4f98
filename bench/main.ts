// `npm run bench` — dubito vs TensorFlow.js (WebGPU backend), same process, same adapter.
// Usage: npm run bench -- [--quick] [--filter <substring|regex>] [--json PATH] [--budget SECONDS] [--no-cpu]
// Method and how to read the table: bench/README.md.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { create } from 'webgpu';
import * as D from '../node.js';
import type { Backend, Tensor, WebGPUBackend } from '../node.js';
import { type Entry, type Inputs, type RunMode, type TF, type TfTensor, type Workload, isPending } from './types.js';
import { workloads } from './workloads.js';
import { progress } from '../cli/progress.js';

// ---------------------------------------------------------------- options

interface Options {
  mode: RunMode;
  filter: RegExp | null;
  json: string;
  /** Timed-phase budget per workload (ms), both libraries together. */
  budgetMs: number;
  minReps: number;
  maxReps: number;
  cpu: boolean;
}

function usage(): never {
  console.log(`usage: npm run bench -- [options]
  --quick            fewer reps and smaller sizes (whole run well under 2 minutes on lavapipe)
  --filter PATTERN   only rows whose name or group matches (case-insensitive regex, or a plain substring)
  --json PATH        where to write the JSON report (default bench/results/latest.json)
  --budget SECONDS   time budget for the timed reps of one row (default 2.5 quick, 10 full)
  --no-cpu           skip the dubito CPU reference column`);
  process.exit(0);
}

function parseArgs(argv: string[]): Options {
  let mode: RunMode = 'full';
  let filter: RegExp | null = null;
  let json = 'bench/results/latest.json';
  let budget: number | null = null;
  let cpu = true;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--quick') mode = 'quick';
    else if (a === '--filter') {
      const p = value();
      try {
        filter = new RegExp(p, 'i');
      } catch {
        filter = new RegExp(p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'i');
      }
    } else if (a === '--json') json = value();
    else if (a === '--budget') budget = Number(value()) * 1000;
    else if (a === '--no-cpu') cpu = false;
    else if (a === '--help' || a === '-h') usage();
    else throw new Error(`unknown option ${a} (try --help)`);
  }
  const quick = mode === 'quick';
  return { mode, filter, json, budgetMs: budget ?? (quick ? 3000 : 10000), minReps: 3, maxReps: quick ? 7 : 30, cpu };
}

// ---------------------------------------------------------------- statistics

interface Stats {
  reps: number;
  medianMs: number;
  minMs: number;
  maxMs: number;
  p25Ms: number;
  p75Ms: number;
  gflops: number | null;
  usPerOp: number | null;
  timesMs: number[];
}

function quantile(sorted: number[], q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

function stats(times: number[], w: Workload): Stats {
  const s = [...times].sort((a, b) => a - b);
  const med = quantile(s, 0.5);
  return {
    reps: s.length,
    medianMs: med,
    minMs: s[0],
    maxMs: s[s.length - 1],
    p25Ms: quantile(s, 0.25),
    p75Ms: quantile(s, 0.75),
    gflops: w.flops ? w.flops / (med * 1e6) : null,
    usPerOp: w.ops ? (med * 1000) / w.ops : null,
    timesMs: times.map((t) => Math.round(t * 1000) / 1000),
  };
}

// ---------------------------------------------------------------- one side of a workload

type Host = Float32Array | Int32Array | Float64Array | Uint8Array;

/** Runs one side once; returns elapsed ms (call → every output's data resolved) and the values. */
interface Side {
  label: string;
  runOnce(): Promise<{ ms: number; values: Host[] }>;
  /** Runs an untimed function on the side's state and reads its outputs back. */
  evalOnce(f: (s: any) => unknown): Promise<Host[]>;
  teardown(): void;
}

function dubitoSide(w: Workload, x: Inputs, be: Backend, label: string): Side {
  const prev = D.getBackend();
  D.setBackend(be);
  try {
    const state = D.tidy(() => w.setupDubito(x, be));
    return {
      label,
      async runOnce() {
        const keepBackend = D.getBackend();
        D.setBackend(be);
        try {
          const t0 = performance.now();
          const out = D.tidy(() => w.runDubito(state));
          const outs: Tensor[] = Array.isArray(out) ? out : [out];
          const values = await Promise.all(outs.map((t) => t.data()));
          const ms = performance.now() - t0;
          D.dispose(outs);
          return { ms, values };
        } finally {
          if (keepBackend) D.setBackend(keepBackend);
        }
      },
      async evalOnce(f) {
        const keepBackend = D.getBackend();
        D.setBackend(be);
        try {
          const out = D.tidy(() => f(state) as Tensor | Tensor[]);
          const outs: Tensor[] = Array.isArray(out) ? out : [out];
          const values = await Promise.all(outs.map((t) => t.data()));
          D.dispose(outs);
          return values;
        } finally {
          if (keepBackend) D.setBackend(keepBackend);
        }
      },
      teardown: () => {
        w.teardownDubito?.(state);
        D.dispose(state);
      },
    };
  } finally {
    if (prev) D.setBackend(prev);
  }
}

function tfSide(tf: TF, w: Workload, x: Inputs): Side {
  const state = tf.tidy(() => w.setupTf(tf, x));
  return {
    label: 'tfjs',
    async runOnce() {
      const t0 = performance.now();
      const out = tf.tidy(() => w.runTf(tf, state));
      const outs: TfTensor[] = Array.isArray(out) ? out : [out];
      const values = (await Promise.all(outs.map((t) => t.data()))) as Host[];
      const ms = performance.now() - t0;
      tf.dispose(outs);
      return { ms, values };
    },
    async evalOnce(f) {
      const out = tf.tidy(() => f(state) as TfTensor | TfTensor[]);
      const outs: TfTensor[] = Array.isArray(out) ? out : [out];
      const values = (await Promise.all(outs.map((t) => t.data()))) as Host[];
      tf.dispose(outs);
      return values;
    },
    teardown: () => {
      w.teardownTf?.(tf, state);
      tf.dispose(state as never);
    },
  };
}

/** max|a − b| / max(max|b|, 1e-6) over all outputs (NaN/size mismatch → Infinity). */
function relError(a: Host[], b: Host[]): number {
  if (a.length !== b.length) return Infinity;
  let worst = 0;
  for (let k = 0; k < a.length; k++) {
    const x = a[k];
    const y = b[k];
    if (x.length !== y.length) return Infinity;
    let diff = 0;
    let scale = 1e-6;
    let nan = false;
    for (let i = 0; i < x.length; i++) {
      const d = Math.abs(x[i] - y[i]);
      if (Number.isNaN(d)) nan ||= !(Number.isNaN(x[i]) && Number.isNaN(y[i]));
      else if (d > diff) diff = d;
      const m = Math.abs(y[i]);
      if (m > scale) scale = m;
    }
    const e = nan ? Infinity : diff / scale;
    if (e > worst) worst = e;
  }
  return worst;
}

// ---------------------------------------------------------------- running a row

interface Row {
  name: string;
  group: string;
  status: 'ok' | 'mismatch' | 'error' | 'todo';
  note?: string;
  flops?: number;
  ops?: number;
  check?: {
    rtol: number;
    relErr: number;
    pass: boolean;
    cpuRelErr: number | null;
    /** Set when the row compares with its own statistic instead of max relative error. */
    metric?: string;
    /** Untimed follow-up checks (e.g. loss after one training step). */
    verify?: { name: string; rtol: number; relErr: number; pass: boolean }[];
  };
  dubito?: Stats;
  tfjs?: Stats;
  cpu?: Stats | null;
  /** TF.js median / dubito median: > 1 means dubito is faster. */
  speedup?: number;
  /** TF.js fastest rep / dubito fastest rep (less sensitive to a busy machine). */
  speedupOfMin?: number;
  memory?: { dubitoLeakedTensors: number; tfjsLeakedTensors: number; dubitoPeakGpuBytes?: number };
}

async function runRow(w: Workload, tf: TF, gpuBe: Backend, opts: Options): Promise<Row> {
  const row: Row = { name: w.name, group: w.group, status: 'ok', flops: w.flops, ops: w.ops };
  const x = w.inputs();
  const sides: Side[] = [];
  const dubitoLiveBefore = D.memory().liveTensors;
  const tfLiveBefore = tf.memory().numTensors;
  // Peak GPU bytes of dubito's storage pool over the row (setup, checks and timed reps).
  const gpuPool = gpuBe instanceof D.WebGPUBackend ? gpuBe : null;
  const poolBefore = gpuPool?.memoryInfo().bytesInUse ?? 0;
  gpuPool?.resetPeakMemory();
  try {
    const dub = dubitoSide(w, x, gpuBe, 'dubito');
    sides.push(dub);
    const tfs = tfSide(tf, w, x);
    sides.push(tfs);

    // Warm-up 1 (compiles pipelines) doubles as the cross-check.
    const d0 = await dub.runOnce();
    const t0 = await tfs.runOnce();
    const tfValues = w.tfToDubitoLayout ? w.tfToDubitoLayout(t0.values as Float32Array[]) : t0.values;
    const relErr = w.check.metric ? w.check.metric(d0.values, tfValues) : relError(d0.values, tfValues);
    row.check = { rtol: w.check.rtol, relErr, pass: relErr <= w.check.rtol, cpuRelErr: null };
    if (w.check.metric) row.check.metric = w.check.metricName ?? 'custom';
    for (const v of w.verify ?? []) {
      const dv = await dub.evalOnce((st) => v.dubito(st));
      const tv0 = await tfs.evalOnce((st) => v.tf(tf, st));
      const tv = v.tfToDubitoLayout ? v.tfToDubitoLayout(tv0 as Float32Array[]) : tv0;
      const e = relError(dv, tv);
      (row.check.verify ??= []).push({ name: v.name, rtol: v.rtol, relErr: e, pass: e <= v.rtol });
      if (e > v.rtol) row.check.pass = false;
    }
    if (!row.check.pass) row.status = 'mismatch';
    // Warm-up 2 when runs are short enough (buffer pools, lazily created caches).
    if (d0.ms + t0.ms < opts.budgetMs / 4) {
      await dub.runOnce();
      await tfs.runOnce();
    }

    // Timed reps, interleaved (alternating which library goes first) so both see the same load.
    const dt: number[] = [];
    const tt: number[] = [];
    const start = performance.now();
    // Stop at the budget once minReps are done; on a very slow (or heavily loaded) machine stop
    // anyway after 4× the budget, keeping at least one rep (the row then notes the short count).
    const more = () => {
      const spent = performance.now() - start;
      if (dt.length >= opts.maxReps) return false;
      if (dt.length < 1) return true;
      if (dt.length < opts.minReps) return spent < 4 * opts.budgetMs;
      return spent < opts.budgetMs;
    };
    while (more()) {
      if (dt.length % 2 === 0) {
        dt.push((await dub.runOnce()).ms);
        tt.push((await tfs.runOnce()).ms);
      } else {
        tt.push((await tfs.runOnce()).ms);
        dt.push((await dub.runOnce()).ms);
      }
    }
    row.dubito = stats(dt, w);
    row.tfjs = stats(w.tfExtrapolate ? tt.map((t) => t * w.tfExtrapolate!.factor) : tt, w);
    if (w.tfExtrapolate) row.note = [row.note, `TF.js EXTRAPOLATED: ${w.tfExtrapolate.label}`].filter(Boolean).join('; ');
    row.speedup = row.tfjs.medianMs / row.dubito.medianMs;
    row.speedupOfMin = row.tfjs.minMs / row.dubito.minMs;
    if (dt.length < opts.minReps) row.note = [row.note, `only ${dt.length} rep(s): time cap ${((4 * opts.budgetMs) / 1000).toFixed(0)} s`].filter(Boolean).join('; ');

    // dubito's CPU reference, for scale (small rows only).
    row.cpu = null;
    if (opts.cpu && w.cpuRef) {
      const cpu = dubitoSide(w, x, D.cpuBackend(), 'cpu');
      sides.push(cpu);
      const c0 = await cpu.runOnce();
      row.check.cpuRelErr = w.check.metric ? w.check.metric(c0.values, tfValues) : relError(c0.values, tfValues);
      const ct: number[] = [];
      const cstart = performance.now();
      while (ct.length < opts.maxReps && (ct.length < 1 || performance.now() - cstart < opts.budgetMs / 2)) ct.push((await cpu.runOnce()).ms);
      row.cpu = stats(ct, w);
    }
  } catch (e) {
    row.status = 'error';
    row.note = e instanceof Error ? e.message.split('\n')[0] : String(e);
  } finally {
    for (const s of sides) {
      try {
        s.teardown();
      } catch {
        // best effort
      }
    }
  }
  row.memory = {
    dubitoLeakedTensors: D.memory().liveTensors - dubitoLiveBefore,
    tfjsLeakedTensors: tf.memory().numTensors - tfLiveBefore,
    dubitoPeakGpuBytes: gpuPool ? (gpuPool.memoryInfo().peakBytesInUse ?? 0) - poolBefore : undefined,
  };
  if (row.memory.dubitoLeakedTensors !== 0 || row.memory.tfjsLeakedTensors !== 0) {
    row.note = [row.note, `leak: dubito ${row.memory.dubitoLeakedTensors}, tfjs ${row.memory.tfjsLeakedTensors} tensors`].filter(Boolean).join('; ');
  }
  return row;
}

// ---------------------------------------------------------------- output

function fmtMiB(bytes: number): string {
  return bytes >= 1 << 20 ? `${(bytes / (1 << 20)).toFixed(1)} MiB` : `${(bytes / 1024).toFixed(0)} KiB`;
}

function fmtMs(ms: number): string {
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)}s`;
  if (ms >= 100) return ms.toFixed(0);
  if (ms >= 10) return ms.toFixed(1);
  return ms.toFixed(2);
}

function cell(s: Stats | undefined | null): string {
  if (!s) return '—';
  return `${fmtMs(s.medianMs)} (${fmtMs(s.minMs)}–${fmtMs(s.maxMs)})`;
}

function gf(s: Stats | undefined | null): string {
  return s && s.gflops !== null ? s.gflops.toFixed(2) : '';
}

function printTable(rows: Row[]): void {
  const header = ['workload', 'check', 'dubito ms (min–max)', 'GFLOP/s', 'tfjs ms (min–max)', 'GFLOP/s', 'speed-up', 'cpu ref ms', 'reps', 'notes'];
  const body: string[][] = rows.map((r) => {
    if (r.status === 'todo') return [r.name, '·', 'not yet available', '', '', '', '', '', '', r.note ?? ''];
    if (r.status === 'error' && !r.dubito) return [r.name, '!', 'error', '', '', '', '', '', '', r.note ?? ''];
    const chk = r.check ? `${r.check.pass ? '✓' : '✗'} ${r.check.relErr === 0 ? '0' : r.check.relErr.toExponential(0)}` : '';
    const notes: string[] = [];
    if (r.dubito?.usPerOp != null && r.tfjs?.usPerOp != null) notes.push(`µs/op ${r.dubito.usPerOp.toFixed(0)} vs ${r.tfjs.usPerOp.toFixed(0)}`);
    if (r.check?.metric) notes.push(`check = ${r.check.metric}`);
    for (const v of r.check?.verify ?? []) notes.push(`${v.name} ${v.pass ? '✓' : '✗'} ${v.relErr === 0 ? '0' : v.relErr.toExponential(0)}`);
    if (r.check?.cpuRelErr != null && r.check.cpuRelErr > r.check.rtol) notes.push(`cpu ref disagrees (${r.check.cpuRelErr.toExponential(0)})`);
    if (r.memory?.dubitoPeakGpuBytes != null) notes.push(`peak GPU ${fmtMiB(r.memory.dubitoPeakGpuBytes)}`);
    if (r.note) notes.push(r.note);
    return [
      r.name,
      chk,
      cell(r.dubito),
      gf(r.dubito),
      cell(r.tfjs),
      gf(r.tfjs),
      r.speedup !== undefined ? `${r.speedup.toFixed(2)}×` : '',
      r.cpu ? fmtMs(r.cpu.medianMs) : '—',
      r.dubito ? String(r.dubito.reps) : '',
      notes.join('; '),
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => [...b[i]].length)));
  const right = new Set([3, 5, 6, 7, 8]);
  const line = (cols: string[]) =>
    cols
      .map((c, i) => (right.has(i) ? c.padStart(widths[i] + c.length - [...c].length) : c.padEnd(widths[i] + c.length - [...c].length)))
      .join('  ')
      .trimEnd();
  console.log(line(header));
  console.log(widths.map((w) => '─'.repeat(w)).join('  '));
  for (const b of body) console.log(line(b));
}

function packageVersion(req: NodeJS.Require, name: string): string | null {
  try {
    return (JSON.parse(readFileSync(req.resolve(`${name}/package.json`), 'utf8')) as { version: string }).version;
  } catch {
    try {
      return (JSON.parse(readFileSync(resolve('node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      return null;
    }
  }
}

// ---------------------------------------------------------------- main

async function main(): Promise<number> {
  const opts = parseArgs(process.argv.slice(2));
  if (!process.env.XDG_RUNTIME_DIR) process.env.XDG_RUNTIME_DIR = '/tmp';

  // One Dawn GPU object for both libraries, referenced until the process exits (dropping it
  // while devices live crashes Dawn).
  const gpu = create([]) as GPU;
  Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
  D.setGpuProvider(() => gpu);

  const sharedAdapter = await gpu.requestAdapter();
  if (!sharedAdapter) {
    console.error('bench: no WebGPU adapter (install Mesa lavapipe, see README.md, "Getting a WebGPU adapter")');
    return 2;
  }
  const sharedInfo = sharedAdapter.info;

  const dubitoBe = (await D.init({ backend: 'webgpu' })) as WebGPUBackend;

  // TF.js checks navigator.gpu when its WebGPU backend module loads: import only now.
  const tf = (await import('@tensorflow/tfjs')) as unknown as TF;
  await import('@tensorflow/tfjs-backend-webgpu');
  if (!(await tf.setBackend('webgpu'))) {
    console.error('bench: TF.js could not initialise its WebGPU backend');
    return 2;
  }
  await tf.ready();
  const tfInfo = (tf.backend() as unknown as { adapterInfo?: { vendor?: string; architecture?: string } }).adapterInfo ?? {};

  const req = createRequire(import.meta.url);
  const packages = {
    dubito: packageVersion(req, 'dubito') ?? (JSON.parse(readFileSync(resolve('package.json'), 'utf8')) as { version: string }).version,
    '@tensorflow/tfjs': tf.version.tfjs,
    '@tensorflow/tfjs-core': tf.version['tfjs-core'],
    '@tensorflow/tfjs-backend-webgpu': packageVersion(req, '@tensorflow/tfjs-backend-webgpu'),
    webgpu: packageVersion(req, 'webgpu'),
  };
  const adapter = {
    shared: { vendor: sharedInfo.vendor, architecture: sharedInfo.architecture, device: sharedInfo.device, description: sharedInfo.description },
    dubito: dubitoBe.adapterInfo,
    tfjs: { vendor: tfInfo.vendor ?? '', architecture: tfInfo.architecture ?? '' },
    same: dubitoBe.adapterInfo.vendor === tfInfo.vendor && dubitoBe.adapterInfo.architecture === tfInfo.architecture,
  };
  const machine = {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? '',
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    platform: `${os.platform()} ${os.release()}`,
    arch: os.arch(),
    node: process.version,
    // 1-minute load average before and after the run: a busy machine makes every number noisier.
    loadAvgStart: Math.round(os.loadavg()[0] * 100) / 100,
    loadAvgEnd: 0,
  };

  console.log(`dubito ${packages.dubito} vs @tensorflow/tfjs ${packages['@tensorflow/tfjs']} + tfjs-backend-webgpu ${packages['@tensorflow/tfjs-backend-webgpu']} (webgpu ${packages.webgpu})`);
  console.log(`machine: ${machine.cpus} CPUs (${machine.cpuModel}), node ${machine.node}, ${machine.platform}, load average ${machine.loadAvgStart}`);
  console.log(`adapter: dubito ${adapter.dubito.vendor}/${adapter.dubito.architecture} · tfjs ${adapter.tfjs.vendor}/${adapter.tfjs.architecture}${adapter.same ? ' (same adapter)' : ' (DIFFERENT adapters!)'} · ${adapter.shared.description || adapter.shared.device}`);
  console.log(`mode: ${opts.mode}${opts.filter ? `, filter ${opts.filter}` : ''}; per row: cross-check, warm-up, then ≥${opts.minReps} interleaved reps within ${(opts.budgetMs / 1000).toFixed(1)} s (max ${opts.maxReps}); times = call → data() resolved`);
  console.log('');

  const selected: Entry[] = workloads.filter((e) => e.modes.includes(opts.mode) && (!opts.filter || opts.filter.test(e.name) || opts.filter.test(e.group)));
  if (selected.length === 0) console.log('(no workload matches)');
  const rows: Row[] = [];
  const t0 = performance.now();
  const bar = progress('bench rows', selected.length, { plain: 'each' });
  for (const e of selected) {
    if (isPending(e)) {
      rows.push({ name: e.name, group: e.group, status: 'todo', note: e.todo });
      bar.tick();
      continue;
    }
    bar.tick({ row: e.name }, 0);
    rows.push(await runRow(e, tf, dubitoBe, opts));
    bar.tick();
  }
  bar.done();
  const totalS = (performance.now() - t0) / 1000;
  machine.loadAvgEnd = Math.round(os.loadavg()[0] * 100) / 100;

  printTable(rows);
  console.log('');
  console.log(`speed-up = tfjs median / dubito median (> 1: dubito faster). check: max|dubito − tfjs| / max|tfjs| ≤ rtol (${[...new Set(rows.map((r) => r.check?.rtol).filter((v) => v !== undefined))].join(', ') || '—'}). Total ${totalS.toFixed(1)} s; load average ${machine.loadAvgStart} → ${machine.loadAvgEnd} on ${machine.cpus} CPUs.`);
  console.log('Absolute numbers on lavapipe (software Vulkan) say little about real GPUs; the ratios are the point.');

  const report = {
    schema: 1,
    date: new Date().toISOString(),
    command: `npm run bench --${process.argv.slice(2).map((a) => ` ${a}`).join('')}`,
    mode: opts.mode,
    filter: opts.filter ? String(opts.filter) : null,
    settings: { budgetMs: opts.budgetMs, minReps: opts.minReps, maxReps: opts.maxReps, timing: 'call → all outputs data() resolved; interleaved reps; ms' },
    machine,
    adapter,
    packages,
    totalSeconds: Math.round(totalS * 10) / 10,
    results: rows,
  };
  const jsonPath = resolve(opts.json);
  mkdirSync(dirname(jsonPath), { recursive: true });
  writeFileSync(jsonPath, JSON.stringify(report, null, 2) + '\n');
  console.log(`JSON: ${jsonPath}`);

  const bad = rows.filter((r) => r.status === 'mismatch' || r.status === 'error');
  if (bad.length) console.log(`${bad.length} row(s) failed: ${bad.map((r) => `${r.name} (${r.status})`).join(', ')}`);
  D.shutdown();
  return bad.length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e instanceof Error ? (e.stack ?? e.message) : e);
    process.exit(2);
  },
);
