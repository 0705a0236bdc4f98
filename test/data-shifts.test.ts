/**
 * Distribution-shift transforms (nn/data/shifts.ts) on tiny images, on the CPU and WebGPU
 * backends: inversion, exact 90°/180°/270° rotations, the Gaussian blur against a direct float64
 * convolution (non-square image, radius larger than the image), the noise images' range and seeding,
 * arbitrary-angle bilinear rotation and the contrast transform against hand values.
 */
import { describe, expect, it } from 'vitest';
import {
  ArgumentError, contrastImages, gaussianBlur, gaussianKernel, rotateImagesBy, setBackend, gaussianNoiseImages, invertImages, rotateImages, ShapeError, tensor, uniformNoiseImages, type Backend,
} from '../node.js';
import { cpu, requireWebGPU } from './helpers/backends.js';

const backends: [string, (ctx: { skip: (note?: string) => void }) => Promise<Backend>][] = [['cpu', async () => cpu], ['webgpu', requireWebGPU]];

describe('image shift transforms', () => {
  for (const [name, get] of backends) {
    it(`invert and rotate on ${name}`, async (ctx) => {
      const be = await get(ctx);
      // one 3×3 image, two batch rows
      const a = [[1, 2, 3], [4, 5, 6], [7, 8, 9]];
      const x = tensor([[a], [a.map((r) => r.map((v) => v / 10))]], undefined, { backend: be });
      const inv = invertImages(x);
      expect(Array.from(await inv.data()).slice(0, 3)).toEqual([0, -1, -2]);
      const r1 = rotateImages(x, 1);
      // 90° counter-clockwise: out[i][j] = a[j][W−1−i]
      expect(Array.from(await r1.data()).slice(0, 9)).toEqual([3, 6, 9, 2, 5, 8, 1, 4, 7]);
      const r2 = rotateImages(x, 2);
      expect(Array.from(await r2.data()).slice(0, 9)).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1]);
      const r3 = rotateImages(x, -1);
      expect(Array.from(await r3.data()).slice(0, 9)).toEqual([7, 4, 1, 8, 5, 2, 9, 6, 3]);
      const r4 = rotateImages(rotateImages(r1, 1), 2);
      expect(Array.from(await r4.data())).toEqual(Array.from(await x.data()));
      for (const t of [inv, r1, r2, r3, r4, x]) t.dispose();
    });

    it(`gaussian blur on ${name} matches a direct float64 convolution (2×5 image, radius 3)`, async (ctx) => {
      const be = await get(ctx);
      const img = [[0, 1, 0, 2, 0.5], [3, 0, 1, 0, 1]];
      const x = tensor([[img]], undefined, { backend: be });
      const sigma = 0.9;
      const { kernel, radius } = gaussianKernel(sigma);
      expect(radius).toBe(3);
      expect(kernel.reduce((a, v) => a + v, 0)).toBeCloseTo(1, 12);
      const k = 2 * radius + 1;
      const want: number[] = [];
      for (let i = 0; i < 2; i++) for (let j = 0; j < 5; j++) {
        let s = 0;
        for (let u = -radius; u <= radius; u++) for (let v = -radius; v <= radius; v++) {
          const ii = i + u;
          const jj = j + v;
          if (ii >= 0 && ii < 2 && jj >= 0 && jj < 5) s += kernel[(u + radius) * k + v + radius] * img[ii][jj];
        }
        want.push(s);
      }
      const y = gaussianBlur(x, sigma);
      expect(y.shape).toEqual([1, 1, 2, 5]);
      const got = await y.data();
      for (let i = 0; i < want.length; i++) expect(Math.abs(got[i] - want[i])).toBeLessThan(1e-6);
      y.dispose();
      x.dispose();
    });

    it(`rotation by an angle on ${name}: 0° is the identity, 90° the exact quarter turn, 45° hand values`, async (ctx) => {
      const be = await get(ctx);
      const a = [[1, 2, 3], [4, 5, 6], [7, 8, 9]];
      const x = tensor([[a], [a.map((r) => r.map((v) => v / 10))]], undefined, { backend: be });
      const xv = Array.from(await x.data());
      const r0 = rotateImagesBy(x, 0);
      expect(Array.from(await r0.data())).toEqual(xv);
      const q = rotateImages(x, 1);
      const r90 = rotateImagesBy(x, 90);
      const qv = await q.data();
      const r90v = await r90.data();
      for (let i = 0; i < qv.length; i++) expect(Math.abs(r90v[i] - qv[i])).toBeLessThan(1e-6);
      // 4×4 (centre between pixels): −90° is the exact clockwise quarter turn
      const sq = tensor([[Array.from({ length: 4 }, (_, i) => Array.from({ length: 4 }, (_, j) => i * 4 + j))]], undefined, { backend: be });
      const qmT = rotateImages(sq, -1);
      const rmT = rotateImagesBy(sq, -90);
      const qm = await qmT.data();
      const rm = await rmT.data();
      for (let i = 0; i < 16; i++) expect(Math.abs(rm[i] - qm[i])).toBeLessThan(1e-5);
      // 45° on the 3×3 image, centre (1, 1), s = √2/2, t = 1 − s:
      //  out(0,0) samples (x 1, y 1 − √2): only a[0][1] = 2 with weight 1 − (√2 − 1) → 2(2 − √2);
      //  out(0,1) samples (x 1 + s, y 1 − s): bilinear between a[0][1..2] and a[1][1..2]
      //  → t·s·2 + s·s·3 + t·t·5 + s·t·6; the centre stays 5.
      const r45T = rotateImagesBy(x, 45);
      const r45 = await r45T.data();
      const s = Math.SQRT1_2;
      const t = 1 - s;
      expect(Math.abs(r45[0] - 2 * (2 - Math.SQRT2))).toBeLessThan(1e-6);
      expect(Math.abs(r45[1] - (2 * t * s + 3 * s * s + 5 * t * t + 6 * s * t))).toBeLessThan(1e-6);
      expect(Math.abs(r45[4] - 5)).toBeLessThan(1e-6);
      expect(Math.abs(r45[9 + 4] - 0.5)).toBeLessThan(1e-6); // second image, same map, scaled
      expect(Math.abs(r45[9] - 0.2 * (2 - Math.SQRT2))).toBeLessThan(1e-6);
      for (const tt of [x, r0, q, r90, sq, qmT, rmT, r45T]) tt.dispose();
    });

    it(`contrast on ${name}: (x − mean)·c + mean per image and channel, clipped to [0, 1]`, async (ctx) => {
      const be = await get(ctx);
      // channel 0 has mean 0.4, channel 1 is constant 0.5
      const x = tensor([[[[0, 0.2], [0.4, 1]], [[0.5, 0.5], [0.5, 0.5]]]], undefined, { backend: be });
      const loT = contrastImages(x, 0.5);
      const hiT = contrastImages(x, 3);
      const flatT = contrastImages(x, 0);
      const lo = await loT.data();
      const want = [0.2, 0.3, 0.4, 0.7, 0.5, 0.5, 0.5, 0.5];
      for (let i = 0; i < 8; i++) expect(Math.abs(lo[i] - want[i])).toBeLessThan(1e-6);
      const hi = await hiT.data(); // (x − 0.4)·3 + 0.4 = −0.8, −0.2, 0.4, 2.2 → clipped
      const wantHi = [0, 0, 0.4, 1, 0.5, 0.5, 0.5, 0.5];
      for (let i = 0; i < 8; i++) expect(Math.abs(hi[i] - wantHi[i])).toBeLessThan(1e-6);
      const flat = await flatT.data();
      for (let i = 0; i < 4; i++) expect(Math.abs(flat[i] - 0.4)).toBeLessThan(1e-6);
      for (const tt of [x, loT, hiT, flatT]) tt.dispose();
    });

    it(`noise images on ${name}: range, seeding, moments`, async (ctx) => {
      const be = await get(ctx);
      const g = gaussianNoiseImages([50, 1, 8, 8], { seed: 3, backend: be });
      const gv = await g.data();
      let m = 0;
      for (const v of gv) {
        expect(v >= 0 && v <= 1).toBe(true);
        m += v / gv.length;
      }
      expect(Math.abs(m - 0.5)).toBeLessThan(0.02); // clipping at 0 and 1 is symmetric about 0.5
      const g2 = gaussianNoiseImages([50, 1, 8, 8], { seed: 3, backend: be });
      expect(Array.from(await g2.data())).toEqual(Array.from(gv));
      const u = uniformNoiseImages([10, 1, 4, 4], { seed: 1, backend: be });
      for (const v of await u.data()) expect(v >= 0 && v < 1).toBe(true);
      for (const t of [g, g2, u]) t.dispose();
    });
  }

  it('shape errors', () => {
    setBackend(cpu);
    const x = tensor([[1, 2]]);
    expect(() => rotateImages(x, 1)).toThrow(ShapeError);
    const r = tensor([[[[1, 2, 3], [4, 5, 6]]]]);
    expect(() => rotateImages(r, 1)).toThrow(/square/);
    expect(() => gaussianBlur(r, 0)).toThrow(/sigma/);
    expect(() => rotateImagesBy(x, 30)).toThrow(ShapeError);
    expect(() => rotateImagesBy(r, Number.NaN)).toThrow(ArgumentError);
    expect(() => contrastImages(x, 0.5)).toThrow(/contrastImages: expected images \[N, C, H, W\]/);
    expect(() => contrastImages(r, -1)).toThrow(ArgumentError);
    x.dispose();
    r.dispose();
  });
});
