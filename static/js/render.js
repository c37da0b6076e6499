// Atlas -> canvases. Each layer's atlas PNG is decoded once; each map is colour-mapped into an
// ImageData of its own size and drawn once; CSS scales the canvas (image-rendering: pixelated).
import { colormap } from './colormap.js';

function base64Bytes(b64) {
  const text = atob(b64);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

async function decodeGrey(b64) {
  const blob = new Blob([base64Bytes(b64)], { type: 'image/png' });
  const bitmap = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  const { width, height } = bitmap;
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  const rgba = ctx.getImageData(0, 0, width, height).data;
  const grey = new Uint8Array(width * height);
  for (let i = 0; i < grey.length; i++) grey[i] = rgba[i * 4];
  return { grey, width };
}

// A wide layer's default answer carries only its most active maps (atlas.channels, strongest
// first); `partial` says so, `has(c)` whether map c is here, and `adopt` takes the whole layer.
export class LayerMaps {
  constructor(layer, decoded) {
    this.take(layer, decoded);
    this.lmin = Math.min(...layer.lo);
    this.lmax = Math.max(...layer.hi);
  }

  take(layer, decoded) {
    this.layer = layer;
    this.grey = decoded.grey;
    this.width = decoded.width;
    [this.channels, this.h, this.w] = layer.shape;
    this.columns = layer.atlas.columns;
    const sent = layer.atlas.channels;
    this.tiles = sent ? new Map(sent.map((c, k) => [c, k])) : null;
    this.leading = sent ?? [];
    this._ranking = null;
  }

  // `source` {model, blob, checkpoint}: where the rest of a trimmed layer can be asked for (fullmaps.js).
  static async decode(layer, source = null) {
    const maps = new LayerMaps(layer, await decodeGrey(layer.atlas.png));
    maps.source = source;
    return maps;
  }

  get partial() {
    return this.tiles !== null;
  }

  get sent() {
    return this.tiles ? this.tiles.size : this.channels;
  }

  has(c) {
    return this.tiles ? this.tiles.has(c) : c >= 0 && c < this.channels;
  }

  // The same layer answered with all its maps: the bounds are the same, so what is drawn stays right.
  async adopt(layer) {
    const { leading } = this;
    this.take(layer, await decodeGrey(layer.atlas.png));
    this.leading = leading; // the maps already drawn large keep their places
  }

  index(c, i, j) {
    const k = this.tiles ? this.tiles.get(c) : c;
    const row = Math.floor(k / this.columns);
    const col = k % this.columns;
    return (row * this.h + i) * this.width + col * this.w + j;
  }

  value(c, i, j) {
    const { lo, hi } = this.layer;
    return lo[c] + (this.grey[this.index(c, i, j)] / 255) * (hi[c] - lo[c]);
  }

  isDead(c) {
    return !(this.layer.hi[c] > this.layer.lo[c]) || this.layer.hi[c] <= 0;
  }

  // Channels ordered by mean activation, strongest first.
  // A trimmed layer's sent maps are its strongest, in the server's order; the rest follow.
  ranking() {
    if (!this._ranking) {
      const { mean, max } = this.layer.channels;
      const first = new Set(this.leading);
      const rest = [...Array(this.channels).keys()].filter((c) => !first.has(c));
      this._ranking = [...this.leading, ...rest.sort((a, b) => mean[b] - mean[a] || max[b] - max[a])];
    }
    return this._ranking;
  }

  draw(canvas, c, { norm = 'channel', cmap = 'viridis', alpha = 255 } = {}) {
    const { w, h } = this;
    if (canvas.width !== w) canvas.width = w;
    if (canvas.height !== h) canvas.height = h;
    const ctx = canvas.getContext('2d');
    const image = ctx.createImageData(w, h);
    const out = image.data;
    const lut = colormap(cmap);
    // t = a*q + b: per map, q itself; per layer, the value rescaled between the layer's min and max.
    let a = 1;
    let b = 0;
    if (norm === 'layer') {
      const span = this.lmax - this.lmin;
      a = span > 0 ? (this.layer.hi[c] - this.layer.lo[c]) / span : 0;
      b = span > 0 ? ((this.layer.lo[c] - this.lmin) / span) * 255 : 0;
    }
    let p = 0;
    for (let i = 0; i < h; i++) {
      const start = this.index(c, i, 0);
      for (let j = 0; j < w; j++) {
        const k = Math.min(255, Math.max(0, Math.round(a * this.grey[start + j] + b))) * 3;
        out[p] = lut[k];
        out[p + 1] = lut[k + 1];
        out[p + 2] = lut[k + 2];
        out[p + 3] = alpha;
        p += 4;
      }
    }
    ctx.putImageData(image, 0, 0);
  }
}
