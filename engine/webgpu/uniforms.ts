/**
 * Builds the bytes of a WGSL uniform struct whose fields are 4-byte scalars (u32, i32, f32) and
 * `array<vec4<u32>, N>` blocks (16-byte aligned). Field order must match the WGSL struct.
 */
export class UniformWriter {
  private words: number[] = [];
  private kinds: ('u' | 'i' | 'f')[] = [];

  u32(v: number): this {
    this.words.push(v >>> 0);
    this.kinds.push('u');
    return this;
  }

  i32(v: number): this {
    this.words.push(v | 0);
    this.kinds.push('i');
    return this;
  }

  f32(v: number): this {
    this.words.push(v);
    this.kinds.push('f');
    return this;
  }

  /** Pads to a 16-byte boundary, then writes `values` padded with zeros to `count` u32s (count % 4 == 0). */
  u32Array(values: readonly number[], count: number): this {
    while (this.words.length % 4 !== 0) this.u32(0);
    for (let i = 0; i < count; i++) this.u32(i < values.length ? values[i] : 0);
    return this;
  }

  bytes(): Uint32Array {
    const n = Math.max(4, Math.ceil(this.words.length / 4) * 4);
    const buf = new ArrayBuffer(n * 4);
    const u = new Uint32Array(buf);
    const i = new Int32Array(buf);
    const f = new Float32Array(buf);
    for (let k = 0; k < this.words.length; k++) {
      const kind = this.kinds[k];
      if (kind === 'f') f[k] = this.words[k];
      else if (kind === 'i') i[k] = this.words[k];
      else u[k] = this.words[k];
    }
    return u;
  }
}

export function uniforms(): UniformWriter {
  return new UniformWriter();
}
