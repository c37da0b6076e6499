// Teach it: the panel where a class names 2-6 things, shows each some examples, trains a head on
// the base model's frozen features and watches it recognize them live (README, "Teaching").
import { $, el, pct } from './dom.js';
import { loadTexts, t, texts } from './i18n.js';
import { Cards } from './teachcards.js';
import { TeachCam, holdToRecord } from './teachcam.js';
import { Curve } from './teachcurve.js';
import * as api from './teachapi.js';
import { showLeaning, showPrediction } from './teachview.js';

const MIN_EXAMPLES = 2; // per class, as the server asks
const MAX_CLASSES = 6;
const state = { names: [], session: null, model: null, counts: {}, trained: false, live: false };
let cards = null;
let cam = null;
let curve = null;
let leaning = new AbortController();

const level = () => $('#level')?.value || 'adult';
const status = (text, kind = '') => {
  const node = $('#teach-status');
  node.textContent = text;
  node.className = `status ${kind}`;
};
const failed = (err) => status(t('error', { detail: err instanceof TypeError ? t('network_error') : err.message }), 'error');
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function words() {
  const entry = texts().teach?.[level()] || texts().teach?.adult || {};
  $('#teach-words').textContent = entry.intro || '';
  $('#teach-after').textContent = state.trained ? entry.trained || '' : '';
}

function refresh() {
  const open = Boolean(state.session);
  $('#teach-add').hidden = open || state.names.length >= MAX_CLASSES;
  $('#teach-start').hidden = open;
  $('#teach-reset').hidden = !open;
  $('#teach-steps').hidden = !open;
  const ready = open && state.names.every((name) => (state.counts[name] || 0) >= MIN_EXAMPLES);
  $('#teach-train').disabled = !ready;
  $('#teach-live').disabled = !state.trained || !cam.running;
  $('#teach-predict-label').classList.toggle('disabled', !state.trained);
  $('#teach-predict-file').disabled = !state.trained;
  $('#teach-export').disabled = !state.trained;
  $('#teach-cam').textContent = t(cam.running ? 'teach_camera_off' : 'teach_camera_on');
  words();
}

function drawCards() {
  cards.render(state.names, Boolean(state.session));
  state.names.forEach((name, i) => cards.setCount(i, state.counts[name] || 0));
  refresh();
}

async function add(index, blob) {
  const name = state.names[index];
  const body = await api.addExample(state.session, name, blob);
  state.counts = body.counts;
  cards.added(index, body.counts[name], blob);
  refresh();
}

function onRecord(index, button) {
  holdToRecord(button, async () => {
    if (!cam.running) return status(t('teach_need_camera'), 'error');
    try {
      await add(index, await cam.grab());
    } catch (err) {
      failed(err);
    }
  });
}

async function onUpload(index, files) {
  for (const file of files) {
    try {
      await add(index, file);
    } catch (err) {
      return failed(err);
    }
  }
  return null;
}

async function onSample(index, src) {
  try {
    const response = await fetch(src);
    if (!response.ok) throw new Error(response.statusText);
    await add(index, await response.blob());
  } catch (err) {
    failed(err);
  }
}

function onChange(removed) {
  if (Number.isInteger(removed)) {
    state.names.splice(removed, 1);
    drawCards();
  } else state.names = cards.names;
}

async function start() {
  state.names = cards.names;
  state.model = $('#model').value;
  try {
    const body = await api.openSession(state.model, state.names);
    Object.assign(state, { session: body.session, names: body.classes, counts: body.counts, trained: body.trained });
    status(t('teach_started', { model: $('#model').selectedOptions[0]?.textContent.trim() ?? state.model }));
    drawCards();
  } catch (err) {
    failed(err);
  }
}

function reset() {
  stopLive();
  if (state.session) api.dropSession(state.session);
  leaning.abort();
  Object.assign(state, { session: null, counts: {}, trained: false });
  curve.reset();
  $('#teach-units-wrap').hidden = true;
  $('#teach-live-out').hidden = true;
  status('');
  drawCards();
}

async function trainNow() {
  $('#teach-train').disabled = true;
  curve.reset();
  status(t('teach_training'), 'busy');
  try {
    const result = await api.train(state.session, (p) => curve.add(p));
    state.trained = true;
    const held = result.heldout_accuracy;
    status(held == null ? t('teach_trained_all', { pct: pct(result.train_accuracy, 0) })
      : t('teach_trained', { pct: pct(held, 0), n: result.heldout_examples }));
    leaning.abort();
    leaning = new AbortController();
    refresh();
    await showLeaning(state.model, result.classes, leaning.signal);
  } catch (err) {
    failed(err);
  } finally {
    refresh();
  }
}

async function liveLoop() {
  while (state.live && cam.running && state.session) {
    try {
      showPrediction(await api.predict(state.session, await cam.grab()));
      await sleep(120);
    } catch (err) {
      if (err.status === 429 || err.status === 503) await sleep(1000 * (err.retryAfter ?? 1));
      else {
        failed(err);
        stopLive();
      }
    }
  }
}

function stopLive() {
  state.live = false;
  $('#teach-live').setAttribute('aria-pressed', 'false');
}

async function toggleCamera() {
  try {
    if (cam.running) {
      stopLive();
      cam.stop();
    } else await cam.start();
    $('#teach-video').hidden = !cam.running;
  } catch (err) {
    status(t('camera_denied', { reason: err.message || err.name }), 'error');
  }
  refresh();
}

async function exportHead() {
  try {
    const url = URL.createObjectURL(await api.exportHead(state.session));
    const link = el('a', { href: url, download: `layerscope-${state.model}-head.safetensors` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  } catch (err) {
    failed(err);
  }
}

async function importHead(file) {
  reset();
  try {
    const body = await api.importHead(file);
    Object.assign(state, { session: body.session, names: body.classes, counts: body.counts, trained: body.trained, model: body.model });
    status(t('teach_imported', { n: body.classes.length }));
    drawCards();
  } catch (err) {
    failed(err);
  }
}

function close() {
  stopLive();
  if (cam.running) toggleCamera();
  $('#teach-panel').close();
}

function show() {
  $('#teach-panel').showModal();
  refresh();
  curve.draw();
}

function wire() {
  $('#teach-close').addEventListener('click', close);
  $('#teach-panel').addEventListener('cancel', (event) => { event.preventDefault(); close(); });
  $('#teach-add').addEventListener('click', () => {
    state.names = [...cards.names, t('teach_default', { n: state.names.length + 1 })];
    drawCards();
  });
  $('#teach-start').addEventListener('click', start);
  $('#teach-reset').addEventListener('click', reset);
  $('#teach-cam').addEventListener('click', toggleCamera);
  $('#teach-train').addEventListener('click', trainNow);
  $('#teach-live').addEventListener('click', () => {
    state.live = !state.live;
    $('#teach-live').setAttribute('aria-pressed', String(state.live));
    if (state.live) liveLoop();
  });
  $('#teach-predict-file').addEventListener('change', async (event) => {
    const [file] = event.target.files;
    event.target.value = '';
    if (file) api.predict(state.session, file).then(showPrediction, failed);
  });
  $('#teach-export').addEventListener('click', exportHead);
  $('#teach-import').addEventListener('change', (event) => {
    const [file] = event.target.files;
    event.target.value = '';
    if (file) importHead(file);
  });
  $('#level')?.addEventListener('change', words);
  // Leaving the page forgets the session at once rather than after its idle time.
  addEventListener('pagehide', () => {
    if (state.session) fetch(`/api/v1/teach/${encodeURIComponent(state.session)}`, { method: 'DELETE', keepalive: true });
  });
}

async function init() {
  await loadTexts();
  cam = new TeachCam($('#teach-video'));
  curve = new Curve($('#teach-curve'));
  cards = new Cards($('#teach-cards'), { onRecord, onUpload, onChange, onSample });
  state.names = [t('teach_default', { n: 1 }), t('teach_default', { n: 2 })];
  wire();
  drawCards();
}

let ready = null;

// The page loads this module on the first press of "Teach it", so a visitor who never teaches
// never downloads it.
export function openTeach() {
  ready ??= init();
  return ready.then(show).catch(failed);
}
