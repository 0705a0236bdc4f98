/** The simplex density SVG (uncertainty/report/simplex.ts): structure, where the mass is drawn, bad input. */
import { describe, expect, it } from 'vitest';
import { simplexDensitySvg } from '../uncertainty/report/simplex.js';
import { svgSize } from '../uncertainty/report/svg.js';

const cells = (svg: string) => [...svg.matchAll(/<polygon points="([^"]+)" fill="(#[0-9a-f]{6})"/g)].map((m) => ({
  pts: m[1]!.split(' ').map((p) => p.split(',').map(Number)),
  fill: m[2]!,
}));
const darkness = (hex: string) => 255 - parseInt(hex.slice(1, 3), 16);

describe('simplexDensitySvg', () => {
  it('flat Dirichlet: every one of the N² cells drawn in the same (darkest) colour', () => {
    const svg = simplexDensitySvg({ alpha: [1, 1, 1], resolution: 10, title: 'flat & <ood>' });
    const c = cells(svg);
    expect(c.length).toBe(100);
    expect(new Set(c.map((x) => x.fill))).toEqual(new Set(['#08306b']));
    expect(svg).not.toContain('NaN');
    expect(svg).toContain('flat &amp; &lt;ood&gt;');
    expect(svgSize(svg).width).toBe(260);
  });
  it('sharp Dirichlet: the darkest cell lies at the corner of its class, the rest of the triangle stays white', () => {
    const svg = simplexDensitySvg({ alpha: [200, 1, 1], resolution: 20 });
    const c = cells(svg);
    expect(c.length).toBeGreaterThan(0);
    expect(c.length).toBeLessThan(40);
    const best = c.reduce((a, b) => (darkness(b.fill) > darkness(a.fill) ? b : a));
    const cy = best.pts.reduce((s, p) => s + p[1]!, 0) / 3;
    const ys = c.flatMap((x) => x.pts.map((p) => p[1]!));
    // corner 1 is at the top: the darkest cell is the topmost one
    expect(cy).toBeLessThanOrEqual(Math.min(...ys) + 20);
  });
  it('rejects bad concentrations and resolutions', () => {
    expect(() => simplexDensitySvg({ alpha: [1, 0, 1] })).toThrow(/alpha must be three positive finite numbers/);
    expect(() => simplexDensitySvg({ alpha: [1, NaN, 1] })).toThrow(RangeError);
    expect(() => simplexDensitySvg({ alpha: [1, 1, 1], resolution: 1 })).toThrow(/resolution/);
  });
});
