/**
 * Table and number formatting for evaluation reports: Markdown tables for `index.md` and
 * fixed-width text tables for the terminal. Pure string building (browser-safe).
 */

export type Align = 'l' | 'r' | 'c';
export type Cell = string | number;

/** A number with `digits` decimals; non-finite values become an em dash. */
export function fmt(v: number, digits = 4): string {
  return Number.isFinite(v) ? v.toFixed(digits) : '—';
}

/** A fraction as a percentage with `digits` decimals ("12.34%"); non-finite → em dash. */
export function pct(v: number, digits = 2): string {
  return Number.isFinite(v) ? `${(v * 100).toFixed(digits)}%` : '—';
}

/** Seconds as "12.3 s" or "4 min 05 s". */
export function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '—';
  if (seconds < 120) return `${seconds.toFixed(1)} s`;
  const m = Math.floor(seconds / 60);
  return `${m} min ${String(Math.round(seconds - 60 * m)).padStart(2, '0')} s`;
}

function cellText(c: Cell): string {
  return typeof c === 'number' ? (Number.isFinite(c) ? String(c) : '—') : c;
}

/** Escapes Markdown table metacharacters in a cell (pipes, newlines). */
export function escapeMarkdownCell(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

/** A GitHub-flavoured Markdown table. `align` per column (default: first left, rest right). */
export function markdownTable(headers: string[], rows: Cell[][], align?: Align[]): string {
  const al = headers.map((_, i) => align?.[i] ?? (i === 0 ? 'l' : 'r'));
  const sep = al.map((a) => (a === 'l' ? ':---' : a === 'r' ? '---:' : ':---:'));
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  const out = [line(headers.map(escapeMarkdownCell)), line(sep)];
  for (const r of rows) out.push(line(headers.map((_, i) => escapeMarkdownCell(cellText(r[i] ?? '')))));
  return `${out.join('\n')}\n`;
}

/** A fixed-width text table (columns padded to their widest cell), for stdout. */
export function textTable(headers: string[], rows: Cell[][], align?: Align[]): string {
  const al = headers.map((_, i) => align?.[i] ?? (i === 0 ? 'l' : 'r'));
  const cells = [headers, ...rows.map((r) => headers.map((_, i) => cellText(r[i] ?? '')))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => [...r[i]].length)));
  const pad = (s: string, i: number) => {
    const extra = widths[i] - [...s].length;
    if (al[i] === 'l') return s + ' '.repeat(extra);
    if (al[i] === 'r') return ' '.repeat(extra) + s;
    const left = Math.floor(extra / 2);
    return ' '.repeat(left) + s + ' '.repeat(extra - left);
  };
  const lines = cells.map((r) => r.map(pad).join('  ').trimEnd());
  lines.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  '));
  return `${lines.join('\n')}\n`;
}
