// Two networks side by side: one row per stage (the input, edges, textures, parts, objects, the
// prediction), each model's layers of that stage in its own column, drawn by bands.js, each
// layer with its receptive field, and hovering a map outlines its patch on that model's input.
import { pruneDrawn, stageBlocks } from './bands.js';
import { $, el } from './dom.js';
import { layerDetail } from './explain.js';
import { fill, t, texts } from './i18n.js';
import { predictionParts } from './predictions.js';
import { fieldOf, placeBox } from './rf.js';

export const ROWS = ['input', 'edges', 'textures', 'parts', 'objects', 'prediction'];
const root = () => $('#compare-view');

// The stage's title at this level, in the words that name no conv layer; placeholders that
// differ between the two models ({size}, {classes}) show both values.
function rowTitle(stage, level, sides) {
  const data = texts();
  const words = data.stages_any?.[stage]?.[level] || data.stages?.[stage]?.[level];
  const both = (f) => [...new Set(sides.map(f))].join(' / ');
  return fill(words?.title ?? stage, {
    size: both((s) => s.model.input_size), classes: both((s) => s.model.classes.length),
    k: both((s) => s.result.predictions.length),
  });
}

function summary(side) {
  const { layers } = side.result;
  const deepest = layers.reduce((a, l) => (l.receptive_field > a.receptive_field ? l : a), layers[0]);
  return t('compare_summary', {
    n: layers.length, rf: deepest?.receptive_field ?? 0, stride: deepest?.stride ?? 0, size: side.model.input_size,
  });
}

function inputCell(side, key) {
  const seen = el('img', { class: 'seen', src: side.result.input.preprocessed, alt: t('input_label', { size: side.model.input_size }) });
  const box = el('div', { class: 'rf-box', 'data-rf': key, hidden: true });
  return [el('div', { class: 'seen-wrap' }, [seen, box])];
}

function predictionCell(side) {
  const list = el('ol', { class: 'predictions', 'data-testid': 'compare-predictions', 'aria-label': t('predictions_label', { k: side.result.predictions.length }) });
  side.result.predictions.forEach((p, rank) => {
    list.append(el('li', { class: rank === 0 ? 'pred top' : 'pred' }, predictionParts(p)));
  });
  const cells = [list];
  if (!side.model.trained) cells.push(el('p', { class: 'pred-note', text: t('untrained') }));
  return cells;
}

// A stage's layers for one side, each told its receptive field in words of this level (once:
// where the level's layer detail already names it, that says it).
function layerCell(side, stage, level, view, onOpen) {
  const blocks = stageBlocks(side.maps, stage, view, (maps, c) => onOpen(side, maps, c));
  const detailSaysRf = (texts().detail?.[level] ?? '').includes('{rf}');
  for (const block of blocks) {
    const layer = side.maps.find((m) => m.layer.name === block.dataset.layer).layer;
    $('.layer-detail', block).textContent = layerDetail(level, layer);
    if (!detailSaysRf) $('.layer-head', block).after(el('p', { class: 'cmp-rf', text: t('compare_rf', { rf: layer.receptive_field, stride: layer.stride }) }));
  }
  return blocks.length ? blocks : [el('p', { class: 'cmp-none', text: t('compare_no_layer') })];
}

function cell(side, key, stage, level, view, onOpen) {
  let body;
  if (stage === 'input') body = inputCell(side, key);
  else if (stage === 'prediction') body = predictionCell(side);
  else body = layerCell(side, stage, level, view, onOpen);
  return el('div', { class: 'cmp-cell', 'data-side': key }, [el('p', { class: 'cmp-who', text: side.model.title }), ...body]);
}

// Hovering a map of one side outlines, on that side's input, the patch the map pixel looks at.
function hoverFor(side, key) {
  return (maps, i, j) => {
    const box = $(`[data-rf="${key}"]`, root());
    if (!box) return;
    box.hidden = !maps;
    if (maps) placeBox(box, fieldOf(maps.layer, i, j), side.model.input_size);
  };
}

// What comparing shows, in the words of this level.
export function compareWords(level) {
  $('#compare-words').textContent = texts().compare?.[level] ?? '';
}

// `sides`: two {model, result, maps}, maps decoded by render.js; `onOpen(side, maps, c)` opens a map.
export function renderCompare(sides, { level, view, onOpen }) {
  const keys = ['a', 'b'];
  sides.forEach((side, k) => {
    for (const maps of side.maps) Object.assign(maps, { scope: `cmp-${keys[k]}-`, hover: hoverFor(side, keys[k]) });
  });
  const heads = el('div', { class: 'cmp-row cmp-heads' }, [
    el('p', { class: 'cmp-corner', text: t('compare_stage') }),
    ...sides.map((side, k) => el('div', { class: 'cmp-cell', 'data-side': keys[k] }, [
      el('h3', { class: 'cmp-model', text: side.model.title }), el('p', { class: 'cmp-summary', text: summary(side) }),
    ])),
  ]);
  const rows = ROWS.map((stage) => el('section', { class: 'cmp-row', 'data-stage': stage, 'aria-labelledby': `cmp-h-${stage}` }, [
    el('h3', { class: 'cmp-stage', id: `cmp-h-${stage}`, text: rowTitle(stage, level, sides) }),
    ...sides.map((side, k) => cell(side, keys[k], stage, level, view, onOpen)),
  ]));
  compareWords(level);
  $('#compare-grid').replaceChildren(heads, ...rows);
  pruneDrawn();
}

export function clearCompareView() {
  $('#compare-grid').replaceChildren();
  pruneDrawn();
}
