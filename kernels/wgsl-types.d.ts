// WGSL kernel files are imported as text (esbuild's `text` loader; a vite plugin in vitest).
declare module '*.wgsl' {
  const source: string;
  export default source;
}
