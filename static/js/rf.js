// Receptive fields: which square of the input a map pixel looks at, drawn as a box over the input.
export function cellAt(event, maps) {
  const r = event.currentTarget.getBoundingClientRect();
  const j = Math.min(maps.w - 1, Math.max(0, Math.floor(((event.clientX - r.left) / r.width) * maps.w)));
  const i = Math.min(maps.h - 1, Math.max(0, Math.floor(((event.clientY - r.top) / r.height) * maps.h)));
  return [i, j];
}

// Map pixel (i, j) looks at the square of side receptive_field centred at offset + (i, j) * stride.
export function fieldOf(layer, i, j) {
  const rf = layer.receptive_field;
  return { x: layer.offset + j * layer.stride - rf / 2, y: layer.offset + i * layer.stride - rf / 2, w: rf, h: rf };
}

// Position `node` over a square input of `size` pixels, in percentages; clipped unless told not to.
export function placeBox(node, { x, y, w, h }, size, clip = true) {
  const x0 = clip ? Math.max(0, x) : x;
  const y0 = clip ? Math.max(0, y) : y;
  const x1 = clip ? Math.min(size, x + w) : x + w;
  const y1 = clip ? Math.min(size, y + h) : y + h;
  Object.assign(node.style, {
    left: `${(x0 / size) * 100}%`, top: `${(y0 / size) * 100}%`,
    width: `${((x1 - x0) / size) * 100}%`, height: `${((y1 - y0) / size) * 100}%`,
  });
}
