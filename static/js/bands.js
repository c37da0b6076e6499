// One band per stage: each layer's most active channels large, plus an "all channels" grid.
import { $, $$, el, num } from './dom.js';
import { t } from './i18n.js';
import { cellAt } from './rf.js';

let onHover = () => {};
export const setHover = (fn) => { onHover = fn; };

const TOP = 8;
const openGrids = new Set(); // layer names whose full grid is open (kept across pictures)
let drawn = []; // every canvas on the page: [canvas, maps, channel]

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
  if (large) button.append(el('span', { class: 'map-caption', 'aria-hidden': 'true', text: t('channel_short', { c }) }));
  if (maps.isDead(c)) button.classList.add('dead');
  button.addEventListener('click', () => onOpen(maps, c));
  canvas.addEventListener('pointermove', (e) => onHover(maps, ...cellAt(e, maps)));
  canvas.addEventListener('pointerleave', () => onHover(null));
  return button;
}

function fillGrid(grid, maps, view, onOpen) {
  if (grid.childElementCount) return;
  for (let c = 0; c < maps.channels; c++) grid.append(mapButton(maps, c, view, onOpen, false));
}

function layerBlock(maps, view, onOpen) {
  const { layer } = maps;
  const top = el('div', { class: 'maps' });
  const settings = view();
  for (const c of maps.ranking().slice(0, TOP)) top.append(mapButton(maps, c, settings, onOpen, true));
  const grid = el('div', { class: 'grid', id: `grid-${layer.name.replace(/\W/g, '-')}` });
  const toggle = el('button', {
    type: 'button', class: 'btn btn-quiet show-all', 'aria-expanded': 'false', 'aria-controls': grid.id,
  });
  const setOpen = (open) => {
    grid.hidden = !open;
    toggle.setAttribute('aria-expanded', String(open));
    toggle.textContent = open ? t('hide_all') : t('show_all', { n: maps.channels });
    if (open) fillGrid(grid, maps, view(), onOpen);
  };
  toggle.addEventListener('click', () => {
    const open = grid.hidden;
    if (open) openGrids.add(layer.name);
    else openGrids.delete(layer.name);
    setOpen(open);
  });
  setOpen(openGrids.has(layer.name));
  return el('div', { class: 'layer', 'data-layer': layer.name }, [
    el('div', { class: 'layer-head' }, [
      el('h3', { class: 'layer-title', text: layer.title }),
      el('p', { class: 'layer-detail', 'data-detail-layer': layer.name }),
    ]),
    top, toggle, grid,
  ]);
}

// Draw every band from decoded layers; `view()` returns the current {norm, cmap}.
export function renderBands(allMaps, view, onOpen) {
  drawn = [];
  for (const band of $$('.band[data-stage]')) {
    const body = $('.layers', band);
    if (!body) continue;
    const blocks = allMaps.filter((m) => m.layer.stage === band.dataset.stage)
      .map((m) => layerBlock(m, view, onOpen));
    body.replaceChildren(...blocks);
    band.classList.toggle('empty', blocks.length === 0);
  }
}

export function redrawAll(view) {
  for (const [canvas, maps, c] of drawn) maps.draw(canvas, c, view);
}
