/**
 * The density of a 3-class Dirichlet drawn on the probability simplex (an equilateral triangle
 * with one class per corner), as a standalone SVG — the picture used to explain prior networks
 * (Malinin & Gales 2018): a sharp Dirichlet at a corner (confident), a sharp one at the centre
 * (data / aleatoric uncertainty: the classes overlap), a flat one (out-of-distribution: no
 * evidence). Pure string building, browser-safe.
 *
 * The triangle is split into N² small triangles; each is filled by the log-density at its
 * centroid, ln Dir(p | α) = const + Σ_k (α_k − 1) ln p_k, relative to the panel's maximum (the
 * normalising constant cancels): white at `logRange` nats (default 6) or more below the maximum,
 * dark blue at the maximum. A log scale keeps a sharp Dirichlet visible as a small spot instead
 * of a single cell. The Dirichlet mean α/α₀ is marked with a red ring.
 */
import { escapeXml } from './svg.js';

export interface SimplexPanelOptions {
  /** Concentrations [α1, α2, α3] (all > 0). */
  alpha: readonly [number, number, number];
  title?: string;
  /** Lines of text under the triangle (e.g. the uncertainty measures). */
  caption?: string[];
  /** Corner labels (default 'class 1' … 'class 3'); corner 1 at the top. */
  labels?: readonly [string, string, string];
  /** Subdivisions per side (default 48). */
  resolution?: number;
  /** Nats below the maximum log-density that map to white (default 6). */
  logRange?: number;
  /** Panel width in px (default 260). */
  width?: number;
}

const f = (v: number): string => (Math.round(v * 10) / 10).toString();

/** log Π_k p_k^(α_k − 1) at barycentric point p (unnormalised log-density). */
function logKernel(alpha: readonly number[], p: readonly number[]): number {
  let s = 0;
  for (let k = 0; k < 3; k++) s += (alpha[k]! - 1) * Math.log(p[k]!);
  return s;
}

/** White (t = 0) → #08306b (t = 1). */
function color(t: number): string {
  const u = Math.min(1, Math.max(0, t));
  const mix = (a: number, b: number) => Math.round(a + (b - a) * u);
  const hex = (v: number) => v.toString(16).padStart(2, '0');
  return `#${hex(mix(255, 8))}${hex(mix(255, 48))}${hex(mix(255, 107))}`;
}

/** One Dirichlet density on the 2-simplex as an SVG panel. */
export function simplexDensitySvg(o: SimplexPanelOptions): string {
  const a = o.alpha;
  if (a.length !== 3 || a.some((v) => !(v > 0) || !Number.isFinite(v))) throw new RangeError(`simplexDensitySvg: alpha must be three positive finite numbers, got [${a.join(', ')}]`);
  const N = o.resolution ?? 48;
  if (!Number.isInteger(N) || N < 2) throw new RangeError(`simplexDensitySvg: resolution must be an integer ≥ 2, got ${N}`);
  const range = o.logRange ?? 6;
  if (!(range > 0)) throw new RangeError(`simplexDensitySvg: logRange must be > 0, got ${range}`);
  const W = o.width ?? 260;
  const side = W - 40;
  const h = (side * Math.sqrt(3)) / 2;
  const top = o.title ? 44 : 18;
  const caption = o.caption ?? [];
  const H = top + h + 22 + 16 * caption.length + 6;
  const V = [[W / 2, top], [20, top + h], [20 + side, top + h]] as const;
  const xy = (p: readonly number[]): [number, number] => [p[0]! * V[0][0] + p[1]! * V[1][0] + p[2]! * V[2][0], p[0]! * V[0][1] + p[1]! * V[1][1] + p[2]! * V[2][1]];
  // Collect the small triangles and their centroid log-densities.
  const tris: { pts: number[][]; ld: number }[] = [];
  const bary = (i: number, j: number) => [i / N, j / N, (N - i - j) / N];
  for (let i = 0; i < N; i++) {
    for (let j = 0; j < N - i; j++) {
      const up = [bary(i, j), bary(i + 1, j), bary(i, j + 1)];
      tris.push({ pts: up, ld: 0 });
      if (i + j <= N - 2) tris.push({ pts: [bary(i + 1, j), bary(i, j + 1), bary(i + 1, j + 1)], ld: 0 });
    }
  }
  let maxLd = -Infinity;
  for (const t of tris) {
    const c = [0, 1, 2].map((k) => (t.pts[0]![k]! + t.pts[1]![k]! + t.pts[2]![k]!) / 3);
    t.ld = logKernel(a, c);
    if (t.ld > maxLd) maxLd = t.ld;
  }
  let s = `<svg xmlns="http://www.w3.org/2000/svg" width="${f(W)}" height="${f(H)}" viewBox="0 0 ${f(W)} ${f(H)}" font-family="Helvetica, Arial, sans-serif">\n`;
  s += `<rect x="0" y="0" width="${f(W)}" height="${f(H)}" fill="#ffffff"/>\n`;
  if (o.title) s += `<text x="${f(W / 2)}" y="18" text-anchor="middle" font-size="13" font-weight="bold">${escapeXml(o.title)}</text>\n`;
  s += '<g stroke-width="0.4">\n';
  for (const t of tris) {
    const v = 1 + (t.ld - maxLd) / range;
    if (!(v > 0)) continue; // white: the background shows through
    const c = color(v);
    const pts = t.pts.map((p) => xy(p).map(f).join(',')).join(' ');
    s += `<polygon points="${pts}" fill="${c}" stroke="${c}"/>\n`;
  }
  s += '</g>\n';
  s += `<polygon points="${V.map((v) => `${f(v[0])},${f(v[1])}`).join(' ')}" fill="none" stroke="#333" stroke-width="1"/>\n`;
  const a0 = a[0] + a[1] + a[2];
  const [mx, my] = xy([a[0] / a0, a[1] / a0, a[2] / a0]);
  s += `<circle cx="${f(mx)}" cy="${f(my)}" r="4" fill="none" stroke="#d62728" stroke-width="1.5"/>\n`;
  const labels = o.labels ?? ['class 1', 'class 2', 'class 3'];
  s += `<text x="${f(V[0][0])}" y="${f(V[0][1] - 3)}" text-anchor="middle" font-size="11">${escapeXml(labels[0])}</text>\n`;
  s += `<text x="${f(V[1][0])}" y="${f(V[1][1] + 14)}" text-anchor="start" font-size="11">${escapeXml(labels[1])}</text>\n`;
  s += `<text x="${f(V[2][0])}" y="${f(V[2][1] + 14)}" text-anchor="end" font-size="11">${escapeXml(labels[2])}</text>\n`;
  caption.forEach((line, i) => {
    s += `<text x="${f(W / 2)}" y="${f(top + h + 32 + 16 * i)}" text-anchor="middle" font-size="11">${escapeXml(line)}</text>\n`;
  });
  return `${s}</svg>\n`;
}
