// "Watch it learn": starts a live training run, draws each progress event (the first layer's
// filters, the watched picture's strongest maps, the curves) and stops it when asked.
import { $, el } from './dom.js';
import { t, texts } from './i18n.js';
import { drawLines } from './lines.js';
import { LayerMaps } from './render.js';
import { events } from './sse.js';

const COLORS = { fresh: '#4535c4', budget: '#c9a400' };
let controller = null;
let picture = () => null; // the page's current picture, watched as the network learns
let level = 'adult';
let stoppedAt = -Infinity; // when this page last stopped a run

const seriesOf = (learners, key, stepKey) => Object.entries(learners).map(([name, curve]) => ({
  label: t(`live_${name}`),
  color: COLORS[name],
  dash: name === 'budget' ? [6, 4] : [],
  points: curve[stepKey].map((step, i) => [step, curve[key][i]]),
}));

function status(text) {
  $('#live-status').textContent = text;
}

async function drawMaps(layers) {
  const row = $('#live-maps');
  const decoded = await Promise.all(layers.map((layer) => LayerMaps.decode(layer)));
  row.replaceChildren(...decoded.map((maps) => {
    const canvas = el('canvas', { className: 'live-map', role: 'img' });
    const strongest = maps.ranking()[0];
    maps.draw(canvas, strongest);
    canvas.setAttribute('aria-label', t('live_map_aria', { layer: maps.layer.title || maps.layer.name, unit: strongest }));
    return el('figure', {}, [canvas, el('figcaption', { textContent: maps.layer.title || maps.layer.name })]);
  }));
}

function drawCurves(body) {
  const { learners } = body;
  const loss = $('#live-loss');
  const accuracy = $('#live-accuracy');
  drawLines(loss, seriesOf(learners, 'loss', 'step'), { xLabel: t('live_steps') });
  drawLines(accuracy, seriesOf(learners, 'val_accuracy', 'val_step'), { yMax: 1, xLabel: t('live_steps') });
  const last = (values) => (values.length ? values[values.length - 1] : null);
  const words = Object.entries(learners).map(([name, c]) => t('live_curve_aria', {
    run: t(`live_${name}`), loss: last(c.loss)?.toFixed(2) ?? '–', accuracy: Math.round(100 * (last(c.val_accuracy) ?? 0)),
  }));
  loss.setAttribute('aria-label', words.join(' '));
  accuracy.setAttribute('aria-label', words.join(' '));
}

async function show(kind, body) {
  if (kind === 'start') {
    $('#live-seen').src = body.picture;
    $('#live-grid').hidden = false;
    status(t('live_starting'));
    return;
  }
  if (kind === 'error') {
    status(body.detail);
    return;
  }
  $('#live-filters').src = body.filters.png;
  drawCurves(body);
  await drawMaps(body.layers);
  const fresh = body.learners.fresh;
  const accuracy = fresh.val_accuracy.length ? Math.round(100 * fresh.val_accuracy[fresh.val_accuracy.length - 1]) : 0;
  const vars = { step: body.step, seconds: Math.round(body.elapsed_s), total: body.seconds, accuracy };
  status(t(kind === 'result' ? 'live_done' : 'live_progress', vars));
}

function setRunning(running) {
  $('#live-start').hidden = running;
  $('#live-stop').hidden = !running;
  $('#live-panel').setAttribute('aria-busy', String(running));
}

const pause = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

// A run this page has just stopped may take the server a moment to let go of: ask again briefly.
async function request(params, signal) {
  for (let attempt = 0; ; attempt++) {
    const blob = picture();
    const response = await fetch(`/api/v1/live?${params}`, {
      method: 'POST', body: blob || undefined, signal,
      headers: blob ? { 'content-type': blob.type || 'application/octet-stream' } : {},
    });
    const justStopped = performance.now() - stoppedAt < 5000;
    if (response.status !== 409 || !justStopped || attempt >= 10) return response;
    await pause(300);
  }
}

async function start() {
  const seconds = $('#live-seconds').value;
  const params = new URLSearchParams({ seconds });
  if ($('#live-budget').checked) params.set('budget', '256');
  controller = new AbortController();
  setRunning(true);
  try {
    const response = await request(params, controller.signal);
    if (!response.ok) {
      const problem = await response.json().catch(() => ({}));
      status(problem.detail || t('live_failed'));
      return;
    }
    for await (const { kind, data } of events(response)) await show(kind, data);
  } catch (error) {
    if (error.name === 'AbortError') status(t('live_stopped'));
    else status(t('live_failed'));
  } finally {
    controller = null;
    setRunning(false);
  }
}

export function setLiveLevel(name) {
  level = name;
  const words = texts()?.live?.[level];
  if (words) $('#live-text').textContent = words;
}

let wired = false;

function wire() {
  $('#live-start').addEventListener('click', start);
  $('#live-stop').addEventListener('click', () => {
    stoppedAt = performance.now();
    controller?.abort();
  });
  wired = true;
}

// The page loads this module on the first press of "Watch it learn"; each press shows or hides
// the panel. ``options.picture`` returns the page's current picture (or null).
export function toggleLive(options) {
  picture = options.picture;
  if (!wired) wire();
  setLiveLevel(options.level);
  const panel = $('#live-panel');
  panel.hidden = !panel.hidden;
  $('#live-open').setAttribute('aria-pressed', String(!panel.hidden));
  document.body.classList.toggle('live-open', !panel.hidden); // classroom mode shows it alone
  if (!panel.hidden) panel.scrollIntoView({ behavior: 'smooth', block: 'start' });
}
