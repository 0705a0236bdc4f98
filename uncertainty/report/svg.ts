/**
 * Tiny SVG plot builders for evaluation reports: pure string building, no DOM, no Node modules
 * (browser-safe). Every builder returns a standalone `<svg>` document string with `width`,
 * `height` and a `viewBox` of the same size; every data coordinate is clamped into the plot
 * area, and non-finite values (NaN, ±∞) are skipped, so the output never contains "NaN".
 *
 * - {@link linePlot}: several named series (e.g. ROC curves), optional y = x diagonal, legend.
 * - {@link histogramOverlay}: normalised histograms of several groups (e.g. ID vs OOD scores).
 * - {@link reliabilityBars}: a reliability diagram (accuracy per confidence bin, gap to the diagonal).
 * - {@link panelGrid}: several of the above side by side in one SVG.
 */

export const PALETTE: readonly string[] = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

/** Escapes text for XML content and attribute values. */
export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** A coordinate for an attribute: finite, at most 2 decimals, no "-0". */
function n(v: number): string {
  if (!Number.isFinite(v)) return '0';
  const r = Math.round(v * 100) / 100;
  return Object.is(r, -0) ? '0' : String(r);
}

/** "Nice" tick values covering [lo, hi] (steps of 1, 2 or 5 × 10^k), about `count` of them. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (hi < lo) [lo, hi] = [hi, lo];
  if (hi === lo) return [lo];
  const raw = (hi - lo) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  const step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
  const out: number[] = [];
  const start = Math.ceil(lo / step - 1e-9);
  const end = Math.floor(hi / step + 1e-9);
  for (let k = start; k <= end; k++) out.push(Number((k * step).toPrecision(12)));
  return out;
}

/** Short tick label: up to 4 significant digits, exponent form for very large/small values. */
export function formatTick(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(1).replace('e+', 'e');
  return String(Number(v.toPrecision(4)));
}

interface Frame {
  width: number;
  height: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
  x: (v: number) => number;
  y: (v: number) => number;
}

function frame(width: number, height: number, xDomain: [number, number], yDomain: [number, number]): Frame {
  const m = { l: 58, r: 14, t: 30, b: 46 };
  const left = m.l;
  const right = width - m.r;
  const top = m.t;
  const bottom = height - m.b;
  const [x0, x1] = widen(xDomain);
  const [y0, y1] = widen(yDomain);
  const clamp = (v: number, a: number, b: number) => Math.min(Math.max(v, Math.min(a, b)), Math.max(a, b));
  return {
    width, height, left, right, top, bottom,
    x: (v) => clamp(left + ((v - x0) / (x1 - x0)) * (right - left), left, right),
    y: (v) => clamp(bottom - ((v - y0) / (y1 - y0)) * (bottom - top), top, bottom),
  };
}

/** Makes a degenerate or non-finite domain usable. */
function widen([a, b]: [number, number]): [number, number] {
  if (!Number.isFinite(a) || !Number.isFinite(b)) return [0, 1];
  if (a === b) return a === 0 ? [-1, 1] : [a - Math.abs(a) * 0.5, a + Math.abs(a) * 0.5];
  return a < b ? [a, b] : [b, a];
}

function open(width: number, height: number, title: string | undefined): string {
  let s = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="11">\n`;
  s += `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>\n`;
  if (title) s += `<text x="${n(width / 2)}" y="18" text-anchor="middle" font-size="13" font-weight="bold">${escapeXml(title)}</text>\n`;
  return s;
}

/** Axes box, grid lines, ticks and labels. */
function axes(f: Frame, xDomain: [number, number], yDomain: [number, number], xLabel: string, yLabel: string): string {
  const [x0, x1] = widen(xDomain);
  const [y0, y1] = widen(yDomain);
  let s = '<g class="axes">\n';
  for (const t of niceTicks(x0, x1, 5)) {
    const px = n(f.x(t));
    s += `<line x1="${px}" y1="${n(f.top)}" x2="${px}" y2="${n(f.bottom)}" stroke="#e6e6e6"/>`;
    s += `<text x="${px}" y="${n(f.bottom + 14)}" text-anchor="middle">${escapeXml(formatTick(t))}</text>\n`;
  }
  for (const t of niceTicks(y0, y1, 5)) {
    const py = n(f.y(t));
    s += `<line x1="${n(f.left)}" y1="${py}" x2="${n(f.right)}" y2="${py}" stroke="#e6e6e6"/>`;
    s += `<text x="${n(f.left - 5)}" y="${py}" text-anchor="end" dominant-baseline="middle">${escapeXml(formatTick(t))}</text>\n`;
  }
  s += `<rect x="${n(f.left)}" y="${n(f.top)}" width="${n(f.right - f.left)}" height="${n(f.bottom - f.top)}" fill="none" stroke="#333333"/>\n`;
  s += `<text class="x-label" x="${n((f.left + f.right) / 2)}" y="${n(f.height - 8)}" text-anchor="middle">${escapeXml(xLabel)}</text>\n`;
  const cy = (f.top + f.bottom) / 2;
  s += `<text class="y-label" x="14" y="${n(cy)}" text-anchor="middle" transform="rotate(-90 14 ${n(cy)})">${escapeXml(yLabel)}</text>\n`;
  return `${s}</g>\n`;
}

export type LegendPosition = 'top-left' | 'top-right' | 'bottom-left' | 'bottom-right' | 'none';

interface LegendEntry {
  name: string;
  color: string;
  dash?: string;
  kind: 'line' | 'box';
}

function legend(f: Frame, entries: LegendEntry[], pos: LegendPosition): string {
  if (pos === 'none' || entries.length === 0) return '';
  const lineH = 14;
  const w = Math.min(f.right - f.left - 8, 28 + 6.2 * Math.max(...entries.map((e) => e.name.length)));
  const h = entries.length * lineH + 8;
  const x = pos.endsWith('left') ? f.left + 6 : f.right - 6 - w;
  const y = pos.startsWith('top') ? f.top + 6 : f.bottom - 6 - h;
  let s = `<g class="legend"><rect x="${n(x)}" y="${n(y)}" width="${n(w)}" height="${n(h)}" fill="#ffffff" fill-opacity="0.85" stroke="#bbbbbb"/>\n`;
  entries.forEach((e, i) => {
    const cy = y + 4 + lineH * i + lineH / 2;
    if (e.kind === 'line') {
      s += `<line x1="${n(x + 5)}" y1="${n(cy)}" x2="${n(x + 21)}" y2="${n(cy)}" stroke="${e.color}" stroke-width="2"${e.dash ? ` stroke-dasharray="${e.dash}"` : ''}/>`;
    } else {
      s += `<rect x="${n(x + 6)}" y="${n(cy - 5)}" width="14" height="10" fill="${e.color}" fill-opacity="0.4" stroke="${e.color}"/>`;
    }
    s += `<text x="${n(x + 26)}" y="${n(cy)}" dominant-baseline="middle">${escapeXml(e.name)}</text>\n`;
  });
  return `${s}</g>\n`;
}

function finiteRange(arrays: ArrayLike<number>[]): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const a of arrays) {
    for (let i = 0; i < a.length; i++) {
      const v = a[i];
      if (Number.isFinite(v)) {
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
    }
  }
  return lo <= hi ? [lo, hi] : [0, 1];
}

export interface Series {
  name: string;
  x: ArrayLike<number>;
  y: ArrayLike<number>;
  color?: string;
  /** SVG stroke-dasharray, e.g. "4 3". */
  dash?: string;
  strokeWidth?: number;
}

export interface LinePlotOptions {
  title?: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  /** Axis ranges (default: the finite data range). */
  xDomain?: [number, number];
  yDomain?: [number, number];
  width?: number;
  height?: number;
  /** Draw the dashed y = x line (ROC chance level, perfect calibration). */
  diagonal?: boolean;
  legend?: LegendPosition;
}

/**
 * Line plot of several series. Points whose x or y is not finite break the line; consecutive
 * points closer than half a pixel to the last drawn one are dropped (a 3,000-point ROC curve
 * becomes a few hundred vertices).
 */
export function linePlot(o: LinePlotOptions): string {
  const width = o.width ?? 480;
  const height = o.height ?? 360;
  const xDomain = o.xDomain ?? finiteRange(o.series.map((s) => s.x));
  const yDomain = o.yDomain ?? finiteRange(o.series.map((s) => s.y));
  const f = frame(width, height, xDomain, yDomain);
  let s = open(width, height, o.title) + axes(f, xDomain, yDomain, o.xLabel, o.yLabel);
  if (o.diagonal) {
    const [a, b] = widen([Math.max(xDomain[0], yDomain[0]), Math.min(xDomain[1], yDomain[1])]);
    s += `<line x1="${n(f.x(a))}" y1="${n(f.y(a))}" x2="${n(f.x(b))}" y2="${n(f.y(b))}" stroke="#999999" stroke-dasharray="4 4"/>\n`;
  }
  const entries: LegendEntry[] = [];
  o.series.forEach((series, i) => {
    const color = series.color ?? PALETTE[i % PALETTE.length];
    // Past the palette, colours repeat: a dash pattern keeps repeated colours apart.
    const ser = series.dash === undefined && series.color === undefined && i >= PALETTE.length ? { ...series, dash: '8 3 2 3' } : series;
    entries.push({ name: ser.name, color, dash: ser.dash, kind: 'line' });
    const len = Math.min(ser.x.length, ser.y.length);
    const parts: string[] = [];
    let cur: string[] = [];
    let lx = NaN;
    let ly = NaN;
    for (let k = 0; k < len; k++) {
      const xv = ser.x[k];
      const yv = ser.y[k];
      if (!Number.isFinite(xv) || !Number.isFinite(yv)) {
        if (cur.length) parts.push(cur.join(' '));
        cur = [];
        lx = NaN;
        continue;
      }
      const px = f.x(xv);
      const py = f.y(yv);
      const last = k === len - 1;
      if (!last && cur.length > 0 && Math.abs(px - lx) < 0.5 && Math.abs(py - ly) < 0.5) continue;
      cur.push(`${n(px)},${n(py)}`);
      lx = px;
      ly = py;
    }
    if (cur.length) parts.push(cur.join(' '));
    for (const p of parts) {
      s += `<polyline class="series" fill="none" stroke="${color}" stroke-width="${ser.strokeWidth ?? 1.8}"${ser.dash ? ` stroke-dasharray="${ser.dash}"` : ''} points="${p}"/>\n`;
    }
  });
  s += legend(f, entries, o.legend ?? 'bottom-right');
  return `${s}</svg>\n`;
}

export interface HistogramGroup {
  name: string;
  values: ArrayLike<number>;
  color?: string;
}

export interface HistogramOptions {
  title?: string;
  xLabel: string;
  /** Default "fraction of samples". */
  yLabel?: string;
  groups: HistogramGroup[];
  /** Number of equal-width bins (default 40). */
  bins?: number;
  /**
   * Range of the bins. Default: the finite range of all groups, trimmed to the [0.5, 99.5]
   * percentiles when `trim` is set. Values outside are counted in the first / last bin.
   */
  range?: [number, number];
  trim?: boolean;
  width?: number;
  height?: number;
  legend?: LegendPosition;
}

function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = q * (sorted.length - 1);
  const i = Math.floor(pos);
  const j = Math.min(sorted.length - 1, i + 1);
  return sorted[i] + (sorted[j] - sorted[i]) * (pos - i);
}

/** Per-group bin fractions (each group sums to 1 over its finite values) on shared edges. */
export function histogramCounts(groups: ArrayLike<number>[], bins: number, range: [number, number]): { edges: Float64Array; fractions: Float64Array[] } {
  const [lo, hi] = widen(range);
  const edges = new Float64Array(bins + 1);
  for (let b = 0; b <= bins; b++) edges[b] = lo + ((hi - lo) * b) / bins;
  const fractions = groups.map((vals) => {
    const c = new Float64Array(bins);
    let total = 0;
    for (let i = 0; i < vals.length; i++) {
      const v = vals[i];
      if (!Number.isFinite(v)) continue;
      let b = Math.floor(((v - lo) / (hi - lo)) * bins);
      if (b < 0) b = 0;
      if (b >= bins) b = bins - 1;
      c[b]++;
      total++;
    }
    if (total > 0) for (let b = 0; b < bins; b++) c[b] /= total;
    return c;
  });
  return { edges, fractions };
}

/**
 * Overlaid histograms (translucent fill + step outline), each group normalised to fractions
 * so groups of different sizes compare directly.
 */
export function histogramOverlay(o: HistogramOptions): string {
  const width = o.width ?? 480;
  const height = o.height ?? 320;
  const bins = o.bins ?? 40;
  let range = o.range;
  if (!range) {
    if (o.trim) {
      const all: number[] = [];
      for (const g of o.groups) for (let i = 0; i < g.values.length; i++) if (Number.isFinite(g.values[i])) all.push(g.values[i]);
      const sorted = Float64Array.from(all).sort();
      range = sorted.length ? [quantile(sorted, 0.005), quantile(sorted, 0.995)] : [0, 1];
    } else {
      range = finiteRange(o.groups.map((g) => g.values));
    }
  }
  range = widen(range);
  const { edges, fractions } = histogramCounts(o.groups.map((g) => g.values), bins, range);
  let ymax = 0;
  for (const fr of fractions) for (const v of fr) ymax = Math.max(ymax, v);
  const yDomain: [number, number] = [0, ymax > 0 ? ymax * 1.08 : 1];
  const f = frame(width, height, range, yDomain);
  let s = open(width, height, o.title) + axes(f, range, yDomain, o.xLabel, o.yLabel ?? 'fraction of samples');
  const entries: LegendEntry[] = [];
  o.groups.forEach((g, gi) => {
    const color = g.color ?? PALETTE[gi % PALETTE.length];
    entries.push({ name: g.name, color, kind: 'box' });
    const fr = fractions[gi];
    const pts: string[] = [`${n(f.x(edges[0]))},${n(f.y(0))}`];
    for (let b = 0; b < bins; b++) {
      pts.push(`${n(f.x(edges[b]))},${n(f.y(fr[b]))}`, `${n(f.x(edges[b + 1]))},${n(f.y(fr[b]))}`);
    }
    pts.push(`${n(f.x(edges[bins]))},${n(f.y(0))}`);
    s += `<polygon class="hist" points="${pts.join(' ')}" fill="${color}" fill-opacity="0.3" stroke="${color}" stroke-width="1.5"/>\n`;
  });
  s += legend(f, entries, o.legend ?? 'top-right');
  return `${s}</svg>\n`;
}

export interface ReliabilityBins {
  /** M + 1 bin edges in [0, 1]. */
  edges: ArrayLike<number>;
  /** Accuracy per bin (NaN for empty bins). */
  accuracy: ArrayLike<number>;
  /** Mean confidence per bin (NaN for empty bins). */
  confidence: ArrayLike<number>;
  /** Samples per bin. */
  count: ArrayLike<number>;
}

export interface ReliabilityOptions {
  title?: string;
  diagram: ReliabilityBins;
  /** Shown in the corner, e.g. "ECE 1.23%". */
  annotation?: string;
  width?: number;
  height?: number;
}

/**
 * Reliability diagram: one bar per non-empty confidence bin at the bin's accuracy, the gap to
 * the bin's mean confidence shaded red, the y = x line of perfect calibration, and the share of
 * samples per bin as a thin grey strip along the bottom (height ∝ √share).
 */
export function reliabilityBars(o: ReliabilityOptions): string {
  const width = o.width ?? 360;
  const height = o.height ?? 360;
  const d = o.diagram;
  const f = frame(width, height, [0, 1], [0, 1]);
  let s = open(width, height, o.title) + axes(f, [0, 1], [0, 1], 'confidence', 'accuracy');
  let total = 0;
  for (let b = 0; b < d.count.length; b++) if (Number.isFinite(d.count[b])) total += d.count[b];
  const bins = d.accuracy.length;
  for (let b = 0; b < bins; b++) {
    const acc = d.accuracy[b];
    const conf = d.confidence[b];
    const lo = d.edges[b];
    const hi = d.edges[b + 1];
    if (!Number.isFinite(acc) || !Number.isFinite(conf) || !Number.isFinite(lo) || !Number.isFinite(hi) || !(d.count[b] > 0)) continue;
    const x0 = f.x(lo) + 0.5;
    const w = Math.max(0.5, f.x(hi) - f.x(lo) - 1);
    s += `<rect class="bar" x="${n(x0)}" y="${n(f.y(acc))}" width="${n(w)}" height="${n(f.y(0) - f.y(acc))}" fill="#1f77b4" fill-opacity="0.8"/>`;
    const top = Math.max(acc, conf);
    const bot = Math.min(acc, conf);
    s += `<rect class="gap" x="${n(x0)}" y="${n(f.y(top))}" width="${n(w)}" height="${n(f.y(bot) - f.y(top))}" fill="#d62728" fill-opacity="0.3" stroke="#d62728" stroke-width="0.5"/>`;
    if (total > 0) {
      const h = 18 * Math.sqrt(d.count[b] / total);
      s += `<rect class="share" x="${n(x0)}" y="${n(f.bottom - h)}" width="${n(w)}" height="${n(h)}" fill="#555555" fill-opacity="0.6"/>`;
    }
    s += '\n';
  }
  s += `<line x1="${n(f.x(0))}" y1="${n(f.y(0))}" x2="${n(f.x(1))}" y2="${n(f.y(1))}" stroke="#999999" stroke-dasharray="4 4"/>\n`;
  s += legend(f, [
    { name: 'accuracy', color: '#1f77b4', kind: 'box' },
    { name: 'gap to confidence', color: '#d62728', kind: 'box' },
  ], 'top-left');
  if (o.annotation) s += `<text x="${n(f.right - 6)}" y="${n(f.bottom - 26)}" text-anchor="end" font-size="12">${escapeXml(o.annotation)}</text>\n`;
  return `${s}</svg>\n`;
}

/** Width and height of a builder's root `<svg>`. */
export function svgSize(svg: string): { width: number; height: number } {
  const m = /^<svg\b[^>]*?\bwidth="([\d.]+)"[^>]*?\bheight="([\d.]+)"/.exec(svg.trimStart());
  if (!m) throw new Error('svgSize: not an <svg> with width and height attributes');
  return { width: Number(m[1]), height: Number(m[2]) };
}

/** Several SVGs (from the builders above) laid out in a grid, `columns` per row, as one SVG. */
export function panelGrid(svgs: string[], opts: { columns?: number; gap?: number; title?: string } = {}): string {
  const cols = Math.max(1, Math.min(opts.columns ?? svgs.length, svgs.length || 1));
  const gap = opts.gap ?? 8;
  const sizes = svgs.map(svgSize);
  const rows = Math.ceil(svgs.length / cols);
  const colW: number[] = new Array(cols).fill(0);
  const rowH: number[] = new Array(rows).fill(0);
  sizes.forEach((sz, i) => {
    colW[i % cols] = Math.max(colW[i % cols], sz.width);
    rowH[Math.floor(i / cols)] = Math.max(rowH[Math.floor(i / cols)], sz.height);
  });
  const head = opts.title ? 28 : 0;
  const width = colW.reduce((a, b) => a + b, 0) + gap * (cols - 1);
  const height = head + rowH.reduce((a, b) => a + b, 0) + gap * Math.max(0, rows - 1);
  let s = `<svg xmlns="http://www.w3.org/2000/svg" width="${n(width)}" height="${n(height)}" viewBox="0 0 ${n(width)} ${n(height)}" font-family="Helvetica, Arial, sans-serif">\n`;
  s += `<rect x="0" y="0" width="${n(width)}" height="${n(height)}" fill="#ffffff"/>\n`;
  if (opts.title) s += `<text x="${n(width / 2)}" y="19" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(opts.title)}</text>\n`;
  svgs.forEach((svg, i) => {
    const c = i % cols;
    const r = Math.floor(i / cols);
    const x = colW.slice(0, c).reduce((a, b) => a + b, 0) + gap * c;
    const y = head + rowH.slice(0, r).reduce((a, b) => a + b, 0) + gap * r;
    // Nested <svg> elements keep each panel's own viewBox; x/y place them.
    s += svg.trim().replace(/^<svg\b/, `<svg x="${n(x)}" y="${n(y)}"`) + '\n';
  });
  return `${s}</svg>\n`;
}
