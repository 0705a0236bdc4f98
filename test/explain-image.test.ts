/** explain/image: colormaps, overlays, grids, PNG encoding (decoded back with fast-png), gallery HTML. */
import { decode } from 'fast-png';
import { describe, expect, it } from 'vitest';
import {
  ArgumentError, ShapeError, blend, colorize, colormap, dispose, encodePng, fromHost, galleryHtml, heatmapImages,
  heatmapOverlays, imageGrid, inputImage, scaleNearest, setBackend,
} from '../node.js';
import { cpu } from './helpers/backends.js';

setBackend(cpu);

describe('colormaps', () => {
  it('jet: r = 1.5 − |4v − 3|, g = 1.5 − |4v − 2|, b = 1.5 − |4v − 1| (clipped), from dark blue to dark red', () => {
    expect(colormap(0, 'jet')).toEqual([0, 0, 128]);
    expect(colormap(0.25, 'jet')).toEqual([0, 128, 255]);
    expect(colormap(0.5, 'jet')).toEqual([128, 255, 128]);
    expect(colormap(0.75, 'jet')).toEqual([255, 128, 0]);
    expect(colormap(1, 'jet')).toEqual([128, 0, 0]);
    expect(colormap(-3, 'jet')).toEqual(colormap(0, 'jet'));
    expect(colormap(7, 'jet')).toEqual(colormap(1, 'jet'));
    expect(colormap(Number.NaN, 'jet')).toEqual(colormap(0, 'jet'));
  });
  it('viridis: matplotlib stops at the ends and the middle, interpolated between', () => {
    expect(colormap(0, 'viridis')).toEqual([0x44, 0x01, 0x54]);
    expect(colormap(0.5, 'viridis')).toEqual([0x21, 0x91, 0x8c]);
    expect(colormap(1, 'viridis')).toEqual([0xfd, 0xe7, 0x25]);
    expect(colormap(1 / 16, 'viridis')).toEqual([Math.round((0x44 + 0x47) / 2), Math.round((0x01 + 0x2d) / 2), Math.round((0x54 + 0x7b) / 2)]);
    expect(colormap(0.3, 'gray')).toEqual([77, 77, 77]);
    expect(() => colormap(0.3, 'rainbow' as never)).toThrow(ArgumentError);
  });
});

describe('images and PNG', () => {
  it('colorize, blend, scale and grid lay out pixels as documented; PNG decodes to the same bytes', () => {
    const heat = colorize([0, 1, 0.5, 0.25], 2, 2, 'jet');
    expect(Array.from(heat.data)).toEqual([...colormap(0), ...colormap(1), ...colormap(0.5), ...colormap(0.25)]);
    const gray = inputImage([0, 1, 0.5, 0.2], 2, 2);
    expect(Array.from(gray.data.subarray(0, 6))).toEqual([0, 0, 0, 255, 255, 255]);
    const rgb = inputImage([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0], 2, 2, { channels: 3 }); // planar C×H×W
    expect(Array.from(rgb.data.subarray(0, 9))).toEqual([255, 0, 0, 0, 255, 0, 0, 0, 255]);
    const mix = blend(gray, heat, 0.25);
    expect(mix.data[3]).toBe(Math.round(0.75 * 255 + 0.25 * 128)); // pixel 1, red
    const big = scaleNearest(heat, 3);
    expect([big.width, big.height]).toEqual([6, 6]);
    expect(Array.from(big.data.subarray(3 * 5, 3 * 6))).toEqual(colormap(1)); // row 0, x = 5 → source (1, 0)
    const grid = imageGrid([heat, gray, mix], { columns: 2, padding: 1, background: [9, 9, 9] });
    expect([grid.width, grid.height]).toEqual([2 * 2 + 3, 2 * 2 + 3]);
    expect(Array.from(grid.data.subarray(0, 3))).toEqual([9, 9, 9]);
    expect(Array.from(grid.data.subarray(3 * (1 * 7 + 1), 3 * (1 * 7 + 1) + 3))).toEqual(colormap(0)); // first image at (1, 1)
    const png = encodePng(grid);
    expect(Array.from(png.subarray(0, 8))).toEqual([137, 80, 78, 71, 13, 10, 26, 10]);
    const back = decode(png);
    expect([back.width, back.height, back.channels, back.depth]).toEqual([7, 7, 3, 8]);
    expect(Array.from(back.data)).toEqual(Array.from(grid.data));
    expect(() => colorize([0, 1, 2], 2, 2)).toThrow(ShapeError);
    expect(() => blend(heat, big)).toThrow(ShapeError);
  });

  it('heatmapOverlays blends each input with its colorised map', async () => {
    const x = fromHost([0, 1, 1, 0, 0.5, 0.5, 0.5, 0.5], [2, 1, 2, 2], 'float32', cpu);
    const maps = fromHost([1, 0, 0, 0, 0, 0, 0, 1], [2, 2, 2], 'float32', cpu);
    const imgs = await heatmapOverlays(x, maps, { alpha: 0.5, scale: 2 });
    expect(imgs.length).toBe(2);
    expect([imgs[0].width, imgs[0].height]).toEqual([4, 4]);
    const [r, g, b] = colormap(1);
    expect(Array.from(imgs[0].data.subarray(0, 3))).toEqual([Math.round(r / 2), Math.round(g / 2), Math.round(b / 2)]);
    const alone = await heatmapImages(maps);
    expect(Array.from(alone[1].data.subarray(9, 12))).toEqual(colormap(1));
    await expect(heatmapOverlays(x, fromHost([1, 2], [1, 2], 'float32', cpu))).rejects.toThrow(ShapeError);
    dispose([x, maps]);
  });

  it('galleryHtml escapes text and lists one row per input', () => {
    const html = galleryHtml({
      title: 'VOICE <test>',
      columns: ['input', 'Grad-CAM'],
      rows: [{ title: 'label "3" & pred 5', flagged: true, cells: [{ src: 'a.png', caption: 'x<y' }, { src: 'b.png' }] }],
    });
    expect(html).toContain('<title>VOICE &lt;test&gt;</title>');
    expect(html).toContain('label &quot;3&quot; &amp; pred 5');
    expect(html).toContain('<tr class="flag">');
    expect(html).toContain('src="a.png"');
    expect(html).toContain('x&lt;y');
    expect(html.match(/<tr/g)?.length).toBe(2);
  });
});
