/** Report builders (browser-safe, pure string building): SVG plots (incl. Dirichlet simplex densities) and Markdown/text tables. */
export * from './svg.js';
export * from './markdown.js';
export * from './simplex.js';
