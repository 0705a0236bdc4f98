// wgsl_reflect's ESM build has no types entry of its own; point it at the package's declarations.
declare module 'wgsl_reflect/wgsl_reflect.module.js' {
  export * from 'wgsl_reflect';
}
