/** Report builders (browser-safe, pure string building): SVG plots and Markdown/text tables. */
export * from './svg.js';
export * from './markdown.js';
