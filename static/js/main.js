// Wiring: settings and URL state, a picture in, every band drawn, the up-close view, classroom.
import { analyze, listModels, units } from './api.js';
import { labelOf, redrawAll, renderBands, setHover, setLabels, setNamedOnly } from './bands.js';
import { initCheckpoint, setCheckpoints } from './checkpoint.js';
import * as classroom from './classroom.js';
import { clearCompare, compareResult, initCompare } from './compare.js';
import { built } from './detail.js';
import { closeCloseup, initCloseup, isOpen, openCloseup } from './closeup.js';
import { gradient } from './colormap.js';
import { $, $$, el, num } from './dom.js';
import { applyLevel } from './explain.js';
import { highlightFilter, showFilters } from './filters.js';
import { clearCam, showCam } from './gradcam.js';
import { fill, loadTexts, t, texts } from './i18n.js';
import { initInputs, loadFirstSample, markChosen } from './inputs.js';
import { showMeasured } from './measured.js';
import { renderOod, renderPredictions } from './predictions.js';
import { completeLayer } from './fullmaps.js';
import { LayerMaps } from './render.js';
import { fieldOf, placeBox } from './rf.js';
import { LEVELS, readState, writeState } from './state.js';
import { clearUnit, showUnit } from './unitinfo.js';
import { initWebcam, isLive } from './webcam.js';

const state = { level: 'adult', norm: 'channel', cmap: 'viridis', ...readState() };
let models = [];
let lastBlob = null;
let shown = null; // {result, maps: LayerMaps[]}
let controller = null;
let pendingCloseup = state.layer != null && state.channel != null;
let dissection = new Map(); // layer name -> unit records of the current model (final weights)
let labelsFor = null; // the model id `dissection` belongs to
let live = null; // static/js/live.js, loaded on the first press of "Watch it learn"

const model = () => models.find((m) => m.id === state.model);
const view = () => ({ norm: state.norm, cmap: state.cmap });

function setStatus(text, kind = '') {
  const status = $('#status');
  status.textContent = text;
  status.className = `status ${kind}`;
  status.setAttribute('role', kind === 'error' ? 'alert' : 'status');
}

function levelContext() {
  const m = model();
  return {
    size: m?.input_size ?? '', k: shown?.result.predictions.length ?? 5,
    classes: m?.classes.length ?? '', layers: shown?.result.layers ?? [], layout: m?.layout,
  };
}

// An ImageNet model the server serves, to look at an unfamiliar picture through in one click.
function photoModel() {
  const other = models.find((m) => m.group === 'imagenet' && m.available);
  if (!other) return null;
  const go = () => {
    const select = $('#model');
    select.value = other.id;
    select.dispatchEvent(new Event('change'));
  };
  return { title: other.title, go };
}

function oodWords(ood) {
  const words = texts().ood?.[state.level] || texts().ood?.adult || '';
  return fill(words, { score: num(ood?.score ?? NaN), threshold: num(ood?.threshold ?? NaN) });
}

function applyWords() {
  applyLevel(state.level, levelContext());
  live?.setLiveLevel(state.level);
  classroom.refreshDots();
  if (shown) renderOod(shown.result.ood, oodWords(shown.result.ood), photoModel());
}

// Dissection labels only describe the finished weights: none while a training checkpoint is shown.
function applyLabels() {
  const on = !state.checkpoint && labelsFor === state.model && [...dissection.values()].some((r) => r.some((u) => u?.named));
  setLabels(on ? dissection : new Map());
  setNamedOnly(on && state.named === '1');
  $('#named-wrap').hidden = !on;
  $('#named-only').checked = state.named === '1';
  if (shown) renderBands(shown.maps, view, openChannel);
}

async function loadLabels() {
  const m = model();
  dissection = new Map();
  labelsFor = null;
  applyLabels();
  if (!m?.available) return;
  try {
    await built(m); // a model not used yet lists its default view once built
    const layers = await Promise.all(m.default_layers.map((name) => units(m.id, name)));
    if (model() !== m) return;
    for (const body of layers) {
      if (!body.dissected) continue;
      const byChannel = [];
      for (const u of body.units) byChannel[u.channel] = u;
      dissection.set(body.layer, byChannel);
    }
    labelsFor = m.id;
    applyLabels();
  } catch {
    // The labels are an extra: the maps work without them.
  }
}

function renderModelNote() {
  const m = model();
  const note = $('#model-note');
  note.replaceChildren();
  if (!m) return;
  const unverified = m.weights?.verified === false;
  note.classList.toggle('warn', !m.available || !m.trained || unverified);
  note.append(el('h2', { class: 'note-title', text: m.title }), el('p', { text: m.description }));
  if (unverified) {
    const text = t('weights_unverified', { file: m.weights.file });
    note.append(el('p', { class: 'note-strong', id: 'weights-unverified', text }));
  }
  if (!m.available) {
    note.append(
      el('p', { class: 'note-strong', text: t('unavailable', { title: m.title }) }),
      el('p', { class: 'small', text: m.unavailable_reason || '' }),
      el('p', { text: t('how_to_get') }),
      el('pre', { class: 'command' }, [el('code', { text: m.how_to_get || '' })]),
    );
    if (m.how_to_get && navigator.clipboard) {
      const copy = el('button', { type: 'button', class: 'btn copy', text: t('copy') });
      copy.addEventListener('click', () => navigator.clipboard.writeText(m.how_to_get)
        .then(() => { copy.textContent = t('copied'); }, () => {}));
      note.append(copy);
    }
    return;
  }
  note.append(el('p', { class: 'small', text: t('trained_on', { what: m.trained_on }) }));
  const shownClasses = m.classes.slice(0, 12).join(', ');
  note.append(el('p', { class: 'small', text: t(m.classes.length > 12 ? 'knows_many' : 'knows', { n: m.classes.length, list: shownClasses }) }));
  const extra = texts().model_notes?.[m.id];
  if (extra) note.append(el('p', { class: 'note-strong', text: extra }));
  if (!m.trained) note.append(el('p', { class: 'note-strong', text: t('untrained') }));
}

function clearResult() {
  shown = null;
  clearCompare();
  for (const node of $$('.band .layers, #predictions')) node.replaceChildren();
  $('#seen').hidden = true;
  $('#verdict').hidden = true;
  $('#pred-hint').hidden = true;
  clearCam();
  renderOod(null, '');
  $('#timing').textContent = '';
  document.body.classList.remove('has-result');
}

function paintLegend() {
  $('#ramp').style.background = gradient(state.cmap);
}

function saveState() {
  writeState(state);
}

function openChannel(maps, c) {
  state.layer = maps.layer.name;
  state.channel = c;
  saveState();
  openCloseup(maps, c, { seenSrc: shown.result.input.preprocessed, inputSize: model()?.input_size || maps.w, view: view() });
  showUnit({
    model: model(), layer: maps.layer, c, blob: lastBlob, label: labelOf(maps.layer.name, c),
    note: state.checkpoint ? t('ckpt_note') : '',
  });
}

function pickPrediction(prediction, button) {
  if (!shown || !lastBlob) return;
  if (button.getAttribute('aria-pressed') === 'true') return clearCam(); // a second press hides it
  showCam(model(), lastBlob, prediction, button, shown.result.input.preprocessed);
}

async function show(result, { live = false } = {}) {
  const start = performance.now();
  const source = { model: result.model, blob: lastBlob, checkpoint: result.checkpoint };
  const maps = await Promise.all(result.layers.map((layer) => LayerMaps.decode(layer, source)));
  shown = { result, maps };
  const seen = $('#seen');
  seen.src = result.input.preprocessed;
  seen.alt = t('input_label', { size: model()?.input_size ?? '' });
  seen.hidden = false;
  renderBands(maps, view, openChannel);
  clearCam();
  // Grad-CAM explains the finished weights, so it is offered only when those made the predictions.
  renderPredictions(result.predictions, { trained: model()?.trained !== false, onPick: state.checkpoint ? null : pickPrediction });
  renderOod(result.ood, oodWords(result.ood), photoModel());
  compareResult(model(), result, lastBlob, { live });
  document.body.classList.add('has-result');
  applyWords();
  $('#timing').textContent = t('timing', { ms: Math.round(result.timings_ms?.total ?? 0) });
  if (live) $('#fps').dataset.renderMs = (performance.now() - start).toFixed(1);
  else performance.mark('ls:bands-drawn');
  if (pendingCloseup && !isLive()) {
    pendingCloseup = false;
    const target = maps.find((m) => m.layer.name === state.layer);
    if (target && state.channel < target.channels) {
      const ready = target.has(state.channel) ? Promise.resolve() : completeLayer(target);
      ready.then(() => openChannel(target, state.channel), () => {});
    }
  }
}

function revealBands() {
  const top = $('#hierarchy').getBoundingClientRect().top;
  if (classroom.isActive() || top < innerHeight * 0.6) return;
  const smooth = !matchMedia('(prefers-reduced-motion: reduce)').matches;
  $('#hierarchy').scrollIntoView({ behavior: smooth ? 'smooth' : 'auto', block: 'start' });
}

async function run(blob, { live = false } = {}) {
  lastBlob = blob;
  const m = model();
  if (!m?.available) {
    setStatus(t('unavailable', { title: m?.title ?? state.model }), 'error');
    return;
  }
  controller?.abort();
  controller = new AbortController();
  const mine = controller;
  if (!live) setStatus(t('working'), 'busy');
  try {
    const result = await analyze(m.id, blob, { signal: mine.signal, checkpoint: state.checkpoint });
    if (mine.signal.aborted) return;
    if (!live) performance.mark('ls:response');
    await show(result, { live });
    if (!live) {
      setStatus('');
      revealBands();
    }
  } catch (err) {
    if (err.name === 'AbortError') return;
    if (live && (err.status === 429 || err.status === 503)) throw err; // the live loop waits and retries
    setStatus(t('error', { detail: err instanceof TypeError ? t('network_error') : err.message }), 'error');
    if (live) throw err;
  }
}

function choose(id, value, key) {
  const select = $(id);
  if ([...select.options].some((o) => o.value === value)) select.value = value;
  state[key] = select.value;
  select.addEventListener('change', () => {
    state[key] = select.value;
    saveState();
    if (key === 'level') {
      applyWords();
      showMeasured(model(), state.level);
    }
    if (key === 'norm' || key === 'cmap') {
      redrawAll(view());
      paintLegend();
    }
    if (key === 'model') {
      renderModelNote();
      closeCloseup();
      clearResult();
      state.checkpoint = setCheckpoints(model(), null);
      saveState();
      showFilters(model(), state.checkpoint);
      showMeasured(model(), state.level);
      loadLabels();
      if (lastBlob) run(lastBlob);
      else applyWords();
    }
  });
}

// Teaching and live training load their modules on first use: a visitor who only looks at
// pictures never downloads them.
function initPanels() {
  const failed = (err) => setStatus(t('error', { detail: err.message }), 'error');
  const teach = $('#teach-open');
  if (teach) {
    teach.addEventListener('click', () => import('./teach.js').then((m) => m.openTeach()).catch(failed));
    teach.disabled = false;
  }
  $('#live-open')?.addEventListener('click', () => import('./live.js').then((m) => {
    live = m;
    m.toggleLive({ picture: () => lastBlob, level: state.level });
  }).catch(failed));
}

async function main() {
  const [, listing] = await Promise.all([loadTexts(), listModels()]);
  models = listing.models;
  if (!state.level || !LEVELS.includes(state.level)) state.level = 'adult';
  if (!models.some((m) => m.id === state.model)) state.model = listing.default;
  choose('#model', state.model, 'model');
  choose('#level', state.level, 'level');
  choose('#norm', state.norm, 'norm');
  choose('#cmap', state.cmap, 'cmap');
  initCompare({ state, models, save: saveState, view });
  state.checkpoint = setCheckpoints(model(), state.checkpoint);
  saveState();
  showFilters(model(), state.checkpoint);
  loadLabels();
  initCheckpoint((name) => {
    state.checkpoint = name;
    saveState();
    showFilters(model(), name);
    applyLabels();
    if (lastBlob) run(lastBlob);
  });
  $('#named-only').addEventListener('change', (e) => {
    state.named = e.target.checked ? '1' : null;
    saveState();
    applyLabels();
  });
  renderModelNote();
  applyWords();
  showMeasured(model(), state.level);
  paintLegend();

  initCloseup({
    onClose: () => {
      clearUnit();
      state.layer = null;
      state.channel = null;
      saveState();
    },
  });
  // Pointing at a pixel of any map outlines, on the input, the patch that pixel looks at.
  // When the input has scrolled out of view, a small copy of it follows in a corner.
  setHover((maps, i, j, c) => {
    const on = Boolean(maps && shown);
    highlightFilter(on && maps.layer.stage === 'edges' ? c : null);
    const rect = $('#seen').getBoundingClientRect();
    const away = on && (rect.bottom < 80 || rect.top > innerHeight);
    $('#seen-rf').hidden = !on || away;
    $('#pip').hidden = !away;
    if (!on) return;
    const field = fieldOf(maps.layer, i, j);
    const size = model()?.input_size || 1;
    placeBox($('#seen-rf'), field, size);
    if (away) {
      $('#pip-img').src = shown.result.input.preprocessed;
      placeBox($('#pip-rf'), field, size);
    }
  });
  const onError = (err) => setStatus(t('error', { detail: err.message }), 'error');
  initInputs({ onImage: (blob) => run(blob), onError });
  initWebcam({
    onSnapshot: (blob) => {
      markChosen();
      run(blob);
    },
    onFrame: (blob) => run(blob, { live: true }),
    frameSize: () => model()?.input_size || 128,
    onError,
  });
  classroom.initClassroom({
    onEnter: async () => {
      if (isOpen()) closeCloseup();
      if (!shown) await loadFirstSample(model()?.group === 'embedded' ? 'world' : 'photo');
    },
  });
  initPanels();
  document.body.classList.add('ready');
}

main().catch((err) => setStatus(t('error', { detail: err.message }), 'error'));
