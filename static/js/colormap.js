// Colour-blind-safe colour maps as 256-entry lookup tables (RGB triplets).
// Viridis via a degree-6 polynomial fit (max error well under one 8-bit step of perceptual use).
const C = [
  [0.2777273272234177, 0.005407344544966578, 0.3340998053353061],
  [0.1050930431085774, 1.404613529898575, 1.384590162594685],
  [-0.3308618287255563, 0.214847559468213, 0.09509516302823659],
  [-4.634230498983486, -5.799100973351585, -19.33244095627987],
  [6.228269936347081, 14.17993336680509, 56.69055260068105],
  [4.776384997670288, -13.74514537774601, -65.35303263337234],
  [-5.435455855934631, 4.645852612178535, 26.3124352495832],
];

function viridis(t) {
  return [0, 1, 2].map((k) => C.reduceRight((acc, c) => acc * t + c[k], 0));
}

function build(fn) {
  const lut = new Uint8ClampedArray(256 * 3);
  for (let i = 0; i < 256; i++) {
    const rgb = fn(i / 255);
    for (let k = 0; k < 3; k++) lut[i * 3 + k] = Math.round(rgb[k] * 255);
  }
  return lut;
}

const MAPS = { viridis: build(viridis), grey: build((t) => [t, t, t]) };
export const colormap = (name) => MAPS[name] || MAPS.viridis;

// CSS gradient for a legend.
export function gradient(name, stops = 8) {
  const lut = colormap(name);
  const parts = [];
  for (let s = 0; s < stops; s++) {
    const i = Math.round((s / (stops - 1)) * 255) * 3;
    parts.push(`rgb(${lut[i]},${lut[i + 1]},${lut[i + 2]})`);
  }
  return `linear-gradient(90deg, ${parts.join(',')})`;
}
