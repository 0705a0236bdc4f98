/**
 * The one progress display of the long runs (`npm run demo`, `eval`, `bench`): on a TTY a
 * cli-progress bar with the count, the elapsed time and an ETA; otherwise (CI logs, pipes) plain
 * lines — one when a new tenth of the way is reached and 15 s have passed since the last line
 * (with `plain: 'each'`: one per tick that sets status fields), and one when it ends — so logs
 * stay short and greppable.
 *
 *   const p = progress('epoch 1/12', steps);
 *   for (...) { ...; p.tick({ loss: '0.1234' }); }
 *   p.done('loss 0.1234  (12.3 s)');
 */
import cliProgress from 'cli-progress';

export interface Progress {
  /** Advances by `n` (default 1) and sets the status fields shown after the bar. */
  tick(fields?: Record<string, string>, n?: number): void;
  /**
   * Stops the bar. `summary` is printed as the task's final line; without one, plain-line mode
   * prints "n/total done in …"; `null` prints nothing (the caller logs its own summary).
   */
  done(summary?: string | null): void;
}

const isTTY = (): boolean => typeof process !== 'undefined' && process.stdout.isTTY === true && !process.env.CI;

function formatStatus(fields: Record<string, string>): string {
  return Object.entries(fields).map(([k, v]) => `${k} ${v}`).join('  ');
}

function seconds(ms: number): string {
  const s = Math.round(ms / 1000);
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/** A progress display for `total` steps of a task named `label`. */
export function progress(label: string, total: number, opts: { indent?: string; plain?: 'tenths' | 'each' } = {}): Progress {
  const indent = opts.indent ?? '  ';
  if (isTTY()) {
    const bar = new cliProgress.SingleBar(
      {
        format: `${indent}${label} [{bar}] {value}/{total}  {duration_formatted} elapsed, ETA {eta_formatted}  {status}`,
        barsize: 24,
        hideCursor: true,
        clearOnComplete: true,
        etaBuffer: 50,
        fps: 5,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0, { status: '' });
    return {
      tick(fields = {}, n = 1) {
        bar.increment(n, { status: formatStatus(fields) });
      },
      done(summary) {
        bar.stop();
        if (summary) console.log(`${indent}${label}  ${summary}`);
      },
    };
  }
  const t0 = performance.now();
  let value = 0;
  let lastTenth = 0;
  let lastPrint = t0;
  return {
    tick(fields = {}, n = 1) {
      value += n;
      const tenth = Math.floor((10 * value) / Math.max(total, 1));
      const now = performance.now();
      const due = opts.plain === 'each' ? Object.keys(fields).length > 0 : tenth > lastTenth && value < total && now - lastPrint >= 15000;
      if (due) {
        lastTenth = tenth;
        lastPrint = now;
        const eta = value > 0 ? `, ETA ${seconds(((now - t0) / value) * (total - value))}` : '';
        console.log(`${indent}${label}  ${value}/${total}  ${seconds(now - t0)} elapsed${eta}  ${formatStatus(fields)}`.trimEnd());
      }
    },
    done(summary) {
      if (summary === null) return;
      console.log(`${indent}${label}  ${summary ?? `${value}/${total} done in ${seconds(performance.now() - t0)}`}`);
    },
  };
}
