/**
 * Report builders for uncertainty evaluations, exported from the package root as the namespace
 * `report` (`import { report } from 'dubito'`): pure string building with no DOM and no Node
 * modules, so they run in the browser and in Node alike. `examples/eval.ts` writes its
 * `index.md` and figures with them; a risk report is built from the same pieces.
 *
 * Plots (standalone `<svg>` documents; non-finite values are skipped, coordinates clamped to the
 * plot area, so the output never contains "NaN"):
 * - `linePlot({ series, ... })`: named series, e.g. ROC curves (from `rocCurve`) or risk-coverage
 *   curves (`riskCoverageCurve`), with an optional y = x diagonal and a legend;
 * - `histogramOverlay({ groups, bins, ... })`: each group's histogram normalised to fractions
 *   (e.g. in-distribution vs OOD scores), with `histogramCounts` for the numbers alone;
 * - `reliabilityBars({ bins, ... })`: a reliability diagram from `reliabilityDiagram`'s bins
 *   (accuracy per confidence bin, the gap to the diagonal shaded);
 * - `panelGrid(svgs, { columns })`: several plots side by side in one SVG; `svgSize` reads a
 *   plot's size; `simplexDensitySvg` shades a 3-class Dirichlet density on the simplex; `niceTicks`, `formatTick`, `escapeXml`, `PALETTE` are the building blocks.
 *
 * Tables and numbers: `markdownTable(headers, rows, align?)` (GitHub Markdown),
 * `textTable(...)` (fixed-width, for a terminal), `fmt(v, digits)`, `pct(v, digits)`,
 * `duration(seconds)`, `escapeMarkdownCell`, `statCell` (mean ± std [CI] over seeds); non-finite numbers print as an em dash.
 */
export * from './svg.js';
export * from './markdown.js';
export * from './simplex.js';
export * from './intervals.js';
