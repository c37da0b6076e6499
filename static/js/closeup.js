// A channel up close: the map large, its heat map over the input, its statistics, and the
// receptive field of the hovered map pixel drawn as a box on the input.
import { $, el, num, pct } from './dom.js';
import { t } from './i18n.js';
import { cellAt, fieldOf, placeBox } from './rf.js';

const dialog = () => $('#closeup');
let current = null; // {maps, c, inputSize}
let cursor = null; // [i, j]
let onCloseCb = () => {};

function stats(maps, c) {
  const { layer } = maps;
  const rank = maps.ranking().indexOf(c) + 1;
  const rows = [
    [t('stat_mean'), num(layer.channels.mean[c])],
    [t('stat_max'), num(layer.channels.max[c])],
    [t('stat_active'), `${pct(layer.channels.active[c])} %`],
    [t('stat_rank'), `${rank} / ${maps.channels}`],
    [t('stat_range'), `${num(layer.lo[c])} … ${num(layer.hi[c])}`],
    [t('stat_shape'), `${maps.h} × ${maps.w}`],
    [t('stat_rf'), `${layer.receptive_field} px`],
    [t('stat_stride'), `${layer.stride} px`],
  ];
  $('#stats').replaceChildren(...rows.flatMap(([k, v]) => [el('div', {}, [el('dt', { text: k }), el('dd', { text: v })])]));
}

function showCursor(i, j) {
  if (!current) return;
  const { maps, inputSize } = current;
  const { layer } = maps;
  cursor = [i, j];
  const rf = layer.receptive_field;
  const box = $('#rf-box');
  placeBox(box, fieldOf(layer, i, j), inputSize);
  box.hidden = false;
  const px = $('#px-box');
  Object.assign(px.style, {
    left: `${(j / maps.w) * 100}%`, top: `${(i / maps.h) * 100}%`,
    width: `${100 / maps.w}%`, height: `${100 / maps.h}%`,
  });
  px.hidden = false;
  $('#rf-text').textContent = t('closeup_rf', { i, j, rf, v: num(maps.value(current.c, i, j)) });
}

function onKey(event) {
  if (!current) return;
  const moves = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
  const move = moves[event.key];
  if (!move) return;
  event.preventDefault();
  event.stopPropagation();
  const [i, j] = cursor || [Math.floor(current.maps.h / 2), Math.floor(current.maps.w / 2) - move[1]];
  showCursor(Math.min(current.maps.h - 1, Math.max(0, i + move[0])), Math.min(current.maps.w - 1, Math.max(0, j + move[1])));
}

function setOpacity() {
  const on = $('#overlay-on').checked;
  const overlay = $('#overlay');
  overlay.hidden = !on;
  overlay.style.opacity = String(Number($('#opacity').value) / 100);
}

export function initCloseup({ onClose }) {
  onCloseCb = onClose;
  const canvas = $('#closeup-canvas');
  canvas.addEventListener('pointermove', (e) => current && showCursor(...cellAt(e, current.maps)));
  canvas.addEventListener('click', (e) => current && showCursor(...cellAt(e, current.maps)));
  canvas.addEventListener('keydown', onKey);
  $('#opacity').addEventListener('input', setOpacity);
  $('#overlay-on').addEventListener('change', setOpacity);
  $('#closeup-close').addEventListener('click', () => dialog().close());
  dialog().addEventListener('close', () => {
    current = null;
    onCloseCb();
  });
  // A click on the backdrop (outside the panel) closes it.
  dialog().addEventListener('click', (e) => e.target === dialog() && dialog().close());
}

export function isOpen() {
  return dialog().open;
}

export function openCloseup(maps, c, { seenSrc, inputSize, view }) {
  const { layer } = maps;
  current = { maps, c, inputSize };
  cursor = null;
  $('#closeup-title').textContent = t('closeup_title', { layer: layer.title, c });
  const canvas = $('#closeup-canvas');
  maps.draw(canvas, c, view);
  canvas.setAttribute('aria-label', t('map_label', {
    layer: layer.title, c, n: maps.channels, h: maps.h, w: maps.w, max: num(layer.channels.max[c]),
  }));
  const seen = $('#closeup-seen');
  seen.src = seenSrc;
  seen.alt = t('input_label', { size: inputSize });
  // The map covers the input from offset - stride/2 over w * stride pixels.
  const overlay = $('#overlay');
  maps.draw(overlay, c, { ...view, alpha: 255 });
  const start = layer.offset - layer.stride / 2;
  placeBox(overlay, { x: start, y: start, w: maps.w * layer.stride, h: maps.h * layer.stride }, inputSize, false);
  setOpacity();
  $('#rf-box').hidden = true;
  $('#px-box').hidden = true;
  $('#rf-text').textContent = t('closeup_hint');
  stats(maps, c);
  if (!dialog().open) dialog().showModal();
  canvas.focus();
}

export function closeCloseup() {
  if (dialog().open) dialog().close();
}
