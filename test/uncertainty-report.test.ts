import { describe, expect, it } from 'vitest';
import {
  escapeXml, formatTick, histogramCounts, histogramOverlay, linePlot, markdownTable, niceTicks, panelGrid, pct, fmt,
  reliabilityBars, svgSize, textTable,
} from '../uncertainty/report/index.js';
import { report } from '../index.js';

/** Minimal XML well-formedness check: balanced tags, one root, no stray '<' or '&'. */
function checkXml(svg: string): void {
  const stack: string[] = [];
  const re = /<(\/?)([a-zA-Z][\w:-]*)([^<>]*?)(\/?)>|<|&(?!(amp|lt|gt|quot|#39);)/g;
  let m: RegExpExecArray | null;
  let roots = 0;
  while ((m = re.exec(svg))) {
    if (m[2] === undefined) throw new Error(`stray '${m[0]}' at ${m.index}: ${svg.slice(m.index - 20, m.index + 20)}`);
    const [, close, name, attrs, self] = m;
    expect(attrs.split('"').length % 2, `unbalanced quotes in <${name}${attrs}>`).toBe(1);
    if (close) {
      expect(stack.pop(), `closing </${name}>`).toBe(name);
    } else if (!self) {
      if (stack.length === 0) roots++;
      stack.push(name);
    } else if (stack.length === 0) roots++;
  }
  expect(stack).toEqual([]);
  expect(roots).toBe(1);
}

/** Every x/y-like coordinate of the root-level drawing lies inside [0, width] × [0, height]. */
function checkCoordinates(svg: string): void {
  const { width, height } = svgSize(svg);
  const xs: number[] = [];
  const ys: number[] = [];
  for (const m of svg.matchAll(/\b(x|x1|x2|cx)="(-?[\d.]+)"/g)) xs.push(Number(m[2]));
  for (const m of svg.matchAll(/\b(y|y1|y2|cy)="(-?[\d.]+)"/g)) ys.push(Number(m[2]));
  for (const m of svg.matchAll(/points="([^"]*)"/g)) {
    for (const pt of m[1].trim().split(/\s+/)) {
      const [x, y] = pt.split(',').map(Number);
      xs.push(x);
      ys.push(y);
    }
  }
  expect(xs.length).toBeGreaterThan(0);
  for (const x of xs) {
    expect(Number.isFinite(x)).toBe(true);
    expect(x).toBeGreaterThanOrEqual(0);
    expect(x).toBeLessThanOrEqual(width);
  }
  for (const y of ys) {
    expect(Number.isFinite(y)).toBe(true);
    expect(y).toBeGreaterThanOrEqual(0);
    expect(y).toBeLessThanOrEqual(height);
  }
}

function checkSvg(svg: string): void {
  expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
  expect(svg).toMatch(/viewBox="0 0 [\d.]+ [\d.]+"/);
  expect(svg).not.toMatch(/NaN|Infinity|undefined/);
  checkXml(svg);
}

describe('report/svg', () => {
  it('linePlot: valid SVG, labels, legend, values mapped into the viewBox, NaN skipped', () => {
    const x = [0, 0.1, 0.2, NaN, 0.5, 1, 7];
    const y = [0, 0.5, 0.8, 0.9, Infinity, 1, -3];
    const svg = linePlot({
      title: 'ROC <test> & co', xLabel: 'false-positive rate', yLabel: 'true-positive rate', xDomain: [0, 1], yDomain: [0, 1], diagonal: true,
      series: [{ name: 'MSP', x, y }, { name: 'energy', x: [0, 1], y: [0, 1], dash: '4 2' }],
    });
    checkSvg(svg);
    checkCoordinates(svg);
    expect(svg).toContain('>false-positive rate</text>');
    expect(svg).toContain('>true-positive rate</text>');
    expect(svg).toContain('ROC &lt;test&gt; &amp; co');
    expect(svg).toContain('>MSP</text>');
    expect(svg).toContain('>energy</text>');
    // The NaN / Infinity points split the MSP line into two polylines.
    expect((svg.match(/class="series"/g) ?? []).length).toBe(3);
    // (0, 0) maps to the bottom-left corner of the plot area, (1, 1) to the top-right.
    const w = 480;
    const h = 360;
    expect(svg).toContain(`points="58,${h - 46} `);
    expect(svg).toMatch(new RegExp(`${w - 14},30"`));
  });

  it('linePlot: series past the palette reuse colours but get a dash pattern', () => {
    const series = Array.from({ length: 12 }, (_, i) => ({ name: `s${i}`, x: [0, 1], y: [0, i / 12] }));
    const svg = linePlot({ xLabel: 'x', yLabel: 'y', series });
    const lines = svg.match(/<polyline class="series"[^>]*>/g)!;
    expect(lines).toHaveLength(12);
    expect(lines.slice(0, 10).every((l) => !l.includes('stroke-dasharray'))).toBe(true);
    expect(lines.slice(10).every((l) => l.includes('stroke-dasharray'))).toBe(true);
  });

  it('linePlot: empty and constant series still produce valid output', () => {
    checkSvg(linePlot({ xLabel: 'x', yLabel: 'y', series: [] }));
    const svg = linePlot({ xLabel: 'x', yLabel: 'y', series: [{ name: 'c', x: [1, 1, 1], y: [2, 2, 2] }] });
    checkSvg(svg);
    checkCoordinates(svg);
  });

  it('histogramOverlay: fractions per group sum to 1, out-of-range values clamp, NaN-free', () => {
    const { fractions, edges } = histogramCounts([[0, 0.5, 1, 2, NaN], [10]], 4, [0, 1]);
    expect(Array.from(edges)).toEqual([0, 0.25, 0.5, 0.75, 1]);
    expect(Array.from(fractions[0])).toEqual([0.25, 0, 0.25, 0.5]);
    expect(Array.from(fractions[1])).toEqual([0, 0, 0, 1]);
    const a = Array.from({ length: 500 }, (_, i) => Math.sin(i) * 2);
    const b = Array.from({ length: 300 }, (_, i) => 3 + Math.cos(i) + (i === 7 ? 1e9 : 0));
    const svg = histogramOverlay({ title: 'energy', xLabel: 'energy = −logsumexp(z)', groups: [{ name: 'MNIST (ID)', values: a }, { name: 'Fashion (OOD)', values: b }], trim: true });
    checkSvg(svg);
    checkCoordinates(svg);
    expect(svg).toContain('>energy = −logsumexp(z)</text>');
    expect(svg).toContain('>fraction of samples</text>');
    expect((svg.match(/class="hist"/g) ?? []).length).toBe(2);
    checkSvg(histogramOverlay({ xLabel: 'x', groups: [{ name: 'empty', values: [] }, { name: 'nan', values: [NaN] }] }));
  });

  it('reliabilityBars: one bar per non-empty bin, inside the viewBox', () => {
    const svg = reliabilityBars({
      title: 'before',
      diagram: { edges: [0, 0.25, 0.5, 0.75, 1], accuracy: [NaN, 0.3, 0.6, 0.95], confidence: [NaN, 0.4, 0.62, 0.9], count: [0, 10, 20, 970] },
      annotation: 'ECE 1.23%',
    });
    checkSvg(svg);
    checkCoordinates(svg);
    expect((svg.match(/class="bar"/g) ?? []).length).toBe(3);
    expect(svg).toContain('>confidence</text>');
    expect(svg).toContain('>accuracy</text>');
    expect(svg).toContain('ECE 1.23%');
  });

  it('panelGrid nests panels side by side in one valid SVG', () => {
    const p = linePlot({ xLabel: 'x', yLabel: 'y', series: [{ name: 's', x: [0, 1], y: [0, 1] }], width: 200, height: 100 });
    const svg = panelGrid([p, p, p], { columns: 2, gap: 10, title: 'grid' });
    checkSvg(svg);
    expect(svgSize(svg)).toEqual({ width: 410, height: 28 + 100 + 10 + 100 });
    expect(svg).toContain('<svg x="210" y="28"');
    expect(svg).toContain('<svg x="0" y="138"');
  });

  it('ticks and escaping', () => {
    expect(niceTicks(0, 1, 5)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(-3.7, 12.2, 4)).toEqual([0, 5, 10]);
    expect(niceTicks(NaN, 1)).toEqual([]);
    expect(formatTick(0.30000000000000004)).toBe('0.3');
    expect(formatTick(123456)).toBe('1.2e5');
    expect(escapeXml(`a<b & "c" 'd'>`)).toBe('a&lt;b &amp; &quot;c&quot; &#39;d&#39;&gt;');
  });
});

describe('report/markdown', () => {
  it('markdownTable escapes pipes and aligns columns', () => {
    const md = markdownTable(['score', 'AUROC'], [['a|b', fmt(0.98765)], ['c', NaN]]);
    expect(md).toBe('| score | AUROC |\n| :--- | ---: |\n| a\\|b | 0.9877 |\n| c | — |\n');
  });

  it('textTable pads columns', () => {
    const t = textTable(['name', 'v'], [['long name', pct(0.5)], ['x', '1']]);
    expect(t.split('\n')).toEqual(['name            v', '---------  ------', 'long name  50.00%', 'x               1', '']);
  });
});

describe('report module', () => {
  it('is public: the package root exports the builders as the namespace `report`', () => {
    expect(report.linePlot).toBe(linePlot);
    expect(report.markdownTable).toBe(markdownTable);
    expect(report.reliabilityBars).toBe(reliabilityBars);
  });
});
