// Compare two networks: the second model's picker (data-testid="compare"), its place in the URL
// (`compare=ID`), the same picture through it, and an honest note when it cannot be compared.
import { analyze } from './api.js';
import { openCloseup } from './closeup.js';
import { clearCompareView, compareWords, renderCompare } from './compareview.js';
import { $ } from './dom.js';
import { t } from './i18n.js';
import { LayerMaps } from './render.js';
import { showUnit } from './unitinfo.js';

let ctx = { state: {}, models: [], save: () => {}, view: () => ({}) };
let last = null; // the main model's latest answer: {model, result, blob}
let shown = null; // the second model's answer for `last`: {model, result}
let controller = null;

const byId = (id) => ctx.models.find((m) => m.id === id);
const second = () => byId(ctx.state.compare);

function note(text) {
  const node = $('#compare-note');
  node.textContent = text;
  node.hidden = !text;
}

function setActive(on) {
  document.body.classList.toggle('comparing', on);
  $('#compare-view').hidden = !on;
  if (on) compareWords(ctx.state.level);
}

// Only models that can be served are offered, never the main model against itself.
function refreshOptions() {
  const select = $('#compare');
  for (const option of select.options) {
    option.disabled = option.value !== '' && (option.value === ctx.state.model || !byId(option.value)?.available);
  }
  select.value = second() && ctx.state.compare !== ctx.state.model ? ctx.state.compare : '';
}

// A compare id from the URL that this server cannot serve is dropped, and the page says why.
function checkWanted() {
  const id = ctx.state.compare;
  if (!id) return note('');
  const m = byId(id);
  if (m?.available && id !== ctx.state.model) return note('');
  ctx.state.compare = null;
  ctx.save();
  if (!m) note(t('compare_unknown', { id }));
  else if (id === ctx.state.model) note('');
  else note(t('compare_unavailable', { title: m.title, reason: m.unavailable_reason || '', how: m.how_to_get || '' }));
}

async function decode({ model, result, blob }) {
  const source = { model: model.id, blob, checkpoint: result.checkpoint };
  return Promise.all(result.layers.map((layer) => LayerMaps.decode(layer, source)));
}

function openMap(side, maps, c) {
  openCloseup(maps, c, { seenSrc: side.result.input.preprocessed, inputSize: side.model.input_size, view: ctx.view() });
  showUnit({ model: side.model, layer: maps.layer, c, blob: side.blob, label: null, note: '' });
}

async function draw() {
  if (!last || !shown) return;
  const sides = [
    { ...last, maps: await decode(last) },
    { ...shown, blob: last.blob, maps: await decode({ ...shown, blob: last.blob }) },
  ];
  if (!second() || shown.model !== second()) return;
  renderCompare(sides, { level: ctx.state.level, view: ctx.view, onOpen: openMap });
  performance.mark('ls:compare-drawn');
}

async function fetchSecond({ live = false } = {}) {
  const m = second();
  if (!m || !last) return;
  if (live && controller) return; // a webcam frame waits for the one in flight
  controller?.abort();
  const mine = new AbortController();
  controller = mine;
  if (!live) note(t('compare_working', { title: m.title }));
  try {
    const result = await analyze(m.id, last.blob, { signal: mine.signal });
    if (mine.signal.aborted || second() !== m) return;
    shown = { model: m, result };
    await draw();
    note('');
  } catch (err) {
    if (err.name !== 'AbortError') note(t('compare_error', { title: m.title, detail: err.message }));
  } finally {
    if (controller === mine) controller = null;
  }
}

function update() {
  const on = Boolean(second());
  setActive(on);
  if (!on) {
    controller?.abort();
    shown = null;
    clearCompareView();
    return;
  }
  fetchSecond();
}

// The main model's answer for a picture: the second model looks at the same picture.
export function compareResult(model, result, blob, { live = false } = {}) {
  last = { model, result, blob };
  if (second()) fetchSecond({ live });
}

// The main picture or model is gone: nothing to compare until the next answer.
export function clearCompare() {
  controller?.abort();
  last = null;
  shown = null;
  clearCompareView();
}

export function initCompare({ state, models, save, view }) {
  ctx = { state, models, save, view };
  checkWanted();
  refreshOptions();
  setActive(Boolean(second()));
  $('#compare').addEventListener('change', (e) => {
    state.compare = e.target.value || null;
    save();
    note('');
    update();
  });
  $('#model').addEventListener('change', () => {
    if (state.compare === state.model) {
      state.compare = null;
      save();
      update();
    }
    refreshOptions();
  });
  $('#level').addEventListener('change', () => {
    compareWords(state.level);
    draw();
  });
}
