// One band per stage: each layer's most active channels large, plus an "all channels" grid.
import { $, $$, el, num } from './dom.js';
import { t } from './i18n.js';
import { completeLayer } from './fullmaps.js';
import { cellAt } from './rf.js';
import { unitTitle } from './unitinfo.js';

let onHover = () => {};
export const setHover = (fn) => { onHover = fn; };

const TOP = 8;
const openGrids = new Set(); // layer names whose full grid is open (kept across pictures)
let drawn = []; // every canvas on the page: [canvas, maps, channel]
let labels = new Map(); // layer name -> dissection records by channel (see GET .../units)
let namedOnly = false;

export const setLabels = (map) => { labels = map; };
export const setNamedOnly = (on) => { namedOnly = on; };
export const labelOf = (layerName, c) => labels.get(layerName)?.[c] || null;

// Maps drawn outside the main bands (compare.js) carry a `scope`: ids of their own, their own
// `hover`, and no dissection labels, which belong to the main model's layers only.
const recordsOf = (maps) => (maps.scope ? undefined : labels.get(maps.layer.name));
const unitOf = (maps, c) => recordsOf(maps)?.[c] || null;
const keyOf = (maps) => `${maps.scope ?? ''}${maps.layer.name}`;

function mapButton(maps, c, view, onOpen, large) {
  const { layer } = maps;
  const label = t('map_label', {
    layer: layer.title, c, n: maps.channels, h: maps.h, w: maps.w, max: num(layer.channels.max[c]),
  });
  const canvas = el('canvas', { class: 'map', role: 'img', 'aria-label': label });
  maps.draw(canvas, c, view);
  drawn.push([canvas, maps, c]);
  const button = el('button', {
    type: 'button', class: large ? 'map-btn large' : 'map-btn', title: t('map_button', { layer: layer.title, c }),
    'data-layer': layer.name, 'data-channel': String(c),
  }, [canvas]);
  const unit = unitOf(maps, c);
  if (unit?.named || unit?.taught) canvas.setAttribute('aria-label', `${label} ${unitTitle(layer.title, c, unit)}`);
  if (unit?.named) button.classList.add('named');
  if (large) {
    const caption = el('span', { class: 'map-caption', 'aria-hidden': 'true', text: t('channel_short', { c }) });
    if (unit?.named) caption.append(' ', el('b', { class: 'unit-tag', text: t('unit_caption', { label: unit.label, iou: unit.iou.toFixed(2) }) }));
    // A unit training gave a part to find is marked, so a taught detector never passes for a found one.
    if (unit?.taught) caption.append(' ', el('span', { class: 'unit-taught', text: t('unit_taught_short', { part: unit.taught }) }));
    button.append(caption);
  }
  if (maps.isDead(c)) button.classList.add('dead');
  button.addEventListener('click', () => onOpen(maps, c));
  const hover = maps.hover ?? onHover;
  canvas.addEventListener('pointermove', (e) => hover(maps, ...cellAt(e, maps), c));
  canvas.addEventListener('pointerleave', () => hover(null));
  return button;
}

// The channels a layer shows: all, or with the toggle on only those dissection names.
function shownChannels(maps) {
  const all = [...Array(maps.channels).keys()];
  const records = recordsOf(maps);
  return namedOnly && records ? all.filter((c) => records[c]?.named) : all;
}

function fillGrid(grid, maps, view, onOpen) {
  if (grid.childElementCount) return;
  for (const c of shownChannels(maps).filter((k) => maps.has(k))) grid.append(mapButton(maps, c, view, onOpen, false));
}

function layerBlock(maps, view, onOpen) {
  const { layer } = maps;
  const top = el('div', { class: 'maps' });
  const settings = view();
  const channels = new Set(shownChannels(maps));
  for (const c of maps.ranking().filter((k) => channels.has(k) && maps.has(k)).slice(0, TOP)) {
    top.append(mapButton(maps, c, settings, onOpen, true));
  }
  if (!channels.size) top.append(el('p', { class: 'none-named', text: t('named_none') }));
  const key = keyOf(maps);
  const grid = el('div', { class: 'grid', id: `grid-${key.replace(/\W/g, '-')}` });
  const toggle = el('button', {
    type: 'button', class: 'btn btn-quiet show-all', 'aria-expanded': 'false', 'aria-controls': grid.id,
  });
  // A trimmed layer says so, and its grid first fetches the maps the answer left out.
  const trimmed = maps.partial ? el('p', { class: 'layer-trim', text: t('layer_trimmed', { sent: maps.sent, n: maps.channels }) }) : null;
  const setOpen = async (open) => {
    toggle.setAttribute('aria-expanded', String(open));
    if (open && maps.partial) {
      toggle.disabled = true;
      toggle.textContent = t('maps_loading', { n: maps.channels });
      try {
        await completeLayer(maps);
        trimmed?.remove();
      } catch (err) {
        toggle.textContent = t('maps_failed', { detail: err.message });
        toggle.setAttribute('aria-expanded', 'false');
        return;
      } finally {
        toggle.disabled = false;
      }
    }
    grid.hidden = !open;
    toggle.textContent = open ? t('hide_all') : t(channels.size < maps.channels ? 'show_named' : 'show_all', { n: channels.size });
    if (open) fillGrid(grid, maps, view(), onOpen);
  };
  toggle.addEventListener('click', () => {
    const open = grid.hidden;
    if (open) openGrids.add(key);
    else openGrids.delete(key);
    setOpen(open);
  });
  setOpen(openGrids.has(key));
  return el('div', { class: 'layer', 'data-layer': layer.name }, [
    el('div', { class: 'layer-head' }, [
      el('h3', { class: 'layer-title', text: layer.title }),
      el('p', { class: 'layer-detail', 'data-detail-layer': maps.scope ? null : layer.name }),
    ]),
    ...(trimmed ? [trimmed] : []), top, toggle, grid,
  ]);
}

// The blocks of one stage's layers, in order; `view()` returns the current {norm, cmap}.
export function stageBlocks(allMaps, stage, view, onOpen) {
  return allMaps.filter((m) => m.layer.stage === stage).map((m) => layerBlock(m, view, onOpen));
}

// Forget the canvases no longer on the page, so a redraw reaches only those still shown.
export function pruneDrawn() {
  drawn = drawn.filter(([canvas]) => canvas.isConnected);
}

// Draw every band from decoded layers; `view()` returns the current {norm, cmap}.
export function renderBands(allMaps, view, onOpen) {
  for (const band of $$('.band[data-stage]')) {
    const body = $('.layers', band);
    if (!body) continue;
    const blocks = stageBlocks(allMaps, band.dataset.stage, view, onOpen);
    body.replaceChildren(...blocks);
    band.classList.toggle('empty', blocks.length === 0);
  }
  pruneDrawn();
}

export function redrawAll(view) {
  for (const [canvas, maps, c] of drawn) maps.draw(canvas, c, view);
}
