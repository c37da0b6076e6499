// Level texts: the title and words of every band, and how much technical detail each layer shows.
import { $, $$, num } from './dom.js';
import { fill, texts } from './i18n.js';

export function layerStats(layer) {
  const { mean, max, active } = layer.channels;
  const n = mean.length;
  const avg = (xs) => xs.reduce((s, x) => s + x, 0) / (xs.length || 1);
  const dead = layer.hi.filter((hi, c) => !(hi > layer.lo[c]) || hi <= 0).length;
  return { mean: avg(mean), max: Math.max(...max), sparsity: (1 - avg(active)) * 100, dead, n };
}

export function layerDetail(level, layer) {
  const [c, h, w] = layer.shape;
  const s = layerStats(layer);
  return fill(texts().detail[level], {
    title: layer.title, name: layer.name, c, h, w, channels: c,
    rf: layer.receptive_field, stride: layer.stride, offset: layer.offset,
    mean: num(s.mean), max: num(s.max), sparsity: s.sparsity.toFixed(1), dead: s.dead,
  });
}

// Words for every band at this level; `context` fills {size}, {k}, {classes}.
export function applyLevel(level, context = {}) {
  const data = texts();
  document.body.dataset.level = level;
  // A network without AlexNet's layout gets words that name no conv1..conv5 where the level does.
  const any = context.layout !== 'alexnet';
  $('#journey').textContent = (any && data.journey_any?.[level]) || data.journey[level] || '';
  for (const band of $$('.band[data-stage]')) {
    const stage = band.dataset.stage;
    const entry = (any && data.stages_any?.[stage]?.[level]) || data.stages[stage]?.[level];
    if (!entry) continue;
    $('.band-title', band).textContent = fill(entry.title, context);
    $('.band-text', band).textContent = fill(entry.text, context);
  }
  for (const node of $$('[data-detail-layer]')) {
    const layer = context.layers?.find((l) => l.name === node.dataset.detailLayer);
    if (layer) node.textContent = layerDetail(level, layer);
  }
}
