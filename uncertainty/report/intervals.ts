/**
 * Cells for tables of repeated measurements: a number over training seeds as "mean ± std" and
 * its 95% bootstrap interval over test samples as "[lo, hi]" (see uncertainty/bootstrap.ts).
 * Pure string building (browser-safe).
 */
import { fmt, pct } from './markdown.js';

/** A statistic over seeds with its bootstrap interval. */
export interface SeedStat {
  mean: number;
  /** Sample standard deviation over seeds (0 with one seed). */
  std: number;
  /** 95% percentile-bootstrap interval over test samples. */
  ci95: readonly [number, number];
  /** Number of seeds. */
  n?: number;
}

/**
 * "0.9876 ± 0.0012 [0.9811, 0.9930]" (or in percent with `percent: true`: "98.76 ± 0.12% [98.11, 99.30]").
 * With one seed (n = 1) the "± std" part is left out. Non-finite values print as an em dash.
 */
export function statCell(s: SeedStat, opts: { digits?: number; percent?: boolean; ci?: boolean } = {}): string {
  const percent = opts.percent ?? false;
  const digits = opts.digits ?? (percent ? 2 : 4);
  const num = (v: number) => (percent ? (Number.isFinite(v) ? (v * 100).toFixed(digits) : '—') : fmt(v, digits));
  const head = percent ? pct(s.mean, digits) : fmt(s.mean, digits);
  const spread = s.n === 1 ? '' : ` ± ${num(s.std)}`;
  const ci = opts.ci === false ? '' : ` [${num(s.ci95[0])}, ${num(s.ci95[1])}]`;
  return `${head}${spread}${ci}`;
}
