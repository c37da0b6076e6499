// The first layer's filters beside the edges band: "what each edge detector looks for".
// The atlas is one PNG, tile c = filter c, row-major, no gaps; we redraw it with gaps.
import { $ } from './dom.js';
import { filters as fetchFilters } from './api.js';
import { built } from './detail.js';
import { t } from './i18n.js';

const GAP = 3;
let controller = null;
let layout = null; // {n, columns, tw, th, width, height} of the drawn canvas
const cache = new Map(); // "model|checkpoint" -> response

function draw(body, image) {
  const [th, tw] = body.atlas.tile;
  const { columns } = body.atlas;
  const n = body.shape[0];
  const rows = Math.ceil(n / columns);
  const canvas = $('#filters-canvas');
  canvas.width = columns * (tw + GAP) - GAP;
  canvas.height = rows * (th + GAP) - GAP;
  const ctx = canvas.getContext('2d');
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.imageSmoothingEnabled = false;
  for (let c = 0; c < n; c++) {
    const sx = (c % columns) * tw;
    const sy = Math.floor(c / columns) * th;
    ctx.drawImage(image, sx, sy, tw, th, (c % columns) * (tw + GAP), Math.floor(c / columns) * (th + GAP), tw, th);
  }
  canvas.dataset.filters = String(n);
  layout = { n, columns, tw, th, width: canvas.width, height: canvas.height };
}

// Outline filter c (the detector of edge map c) while its map is pointed at; null hides it.
export function highlightFilter(c) {
  const box = $('#filter-box');
  box.hidden = c == null || !layout || c >= layout.n || $('#filters').hidden;
  if (box.hidden) return;
  const { columns, tw, th, width, height } = layout;
  Object.assign(box.style, {
    left: `${(((c % columns) * (tw + GAP)) / width) * 100}%`, top: `${((Math.floor(c / columns) * (th + GAP)) / height) * 100}%`,
    width: `${(tw / width) * 100}%`, height: `${(th / height) * 100}%`,
  });
}

// Load and draw the filters of `model` at `checkpoint` (null: the served weights).
export async function showFilters(model, checkpoint) {
  controller?.abort();
  const asked = new AbortController();
  controller = asked;
  await built(model); // a model not used yet names its filters layer once built
  if (asked.signal.aborted) return;
  const figure = $('#filters');
  if (!model?.available || !model.filters_layer) { // no convolution on the RGB input: nothing to draw
    figure.hidden = true;
    return;
  }
  controller = new AbortController();
  const mine = controller;
  const key = `${model.id}|${checkpoint || ''}`;
  try {
    const body = cache.get(key) || await fetchFilters(model.id, model.filters_layer, { checkpoint, signal: mine.signal });
    cache.set(key, body);
    const image = new Image();
    image.src = body.atlas.png;
    await image.decode();
    if (mine.signal.aborted) return;
    draw(body, image);
    const [, , k] = body.shape;
    $('#filters-canvas').setAttribute('aria-label', t('filters_label', { n: body.shape[0], model: model.title, k }));
    $('#filters-note').textContent = t('filters_note');
    figure.hidden = false;
  } catch (err) {
    if (err.name !== 'AbortError') figure.hidden = true; // the filters are an extra: the page goes on without them
  }
}
