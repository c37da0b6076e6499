// Classroom mode: full screen, large type, high contrast, and a guided tour of the stages
// (arrow keys, PageUp/PageDown from a presentation clicker, Home/End), one dot per step.
import { $, $$, el } from './dom.js';
import { t } from './i18n.js';

const STAGES = ['input', 'edges', 'textures', 'parts', 'objects', 'prediction'];
let STEPS = STAGES; // plus 'measured' last, for a model whose hierarchy was measured (tiny)
let step = 0;
let active = false;
let hooks = { onEnter: async () => {}, onStep: () => {} };

const stepTitle = (i) => (STEPS[i] === 'measured'
  ? t('measured_step') // short: the dot labels share one line under the projector
  : $(`.band[data-stage="${STEPS[i]}"] .band-title`)?.textContent) || STEPS[i];

function go(i) {
  step = Math.max(0, Math.min(STEPS.length - 1, i));
  document.body.dataset.step = STEPS[step];
  for (const band of $$('.band[data-stage]')) band.classList.toggle('current', band.dataset.stage === STEPS[step]);
  $('#measured').classList.toggle('current', STEPS[step] === 'measured');
  $$('#dots li').forEach((dot, k) => {
    dot.classList.toggle('done', k < step);
    const button = dot.firstChild;
    if (k === step) button.setAttribute('aria-current', 'step');
    else button.removeAttribute('aria-current');
  });
  $('#status').textContent = t('tour_step', { i: step + 1, n: STEPS.length, title: stepTitle(step) });
  hooks.onStep(STEPS[step]);
}

function onKey(event) {
  if (!active || event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey) return;
  if (event.target.closest?.('select, input, textarea, dialog')) return;
  const forward = ['ArrowRight', 'ArrowDown', 'PageDown', ' '];
  const back = ['ArrowLeft', 'ArrowUp', 'PageUp'];
  let next = null;
  if (forward.includes(event.key)) next = step + 1;
  else if (back.includes(event.key)) next = step - 1;
  else if (event.key === 'Home') next = 0;
  else if (event.key === 'End') next = STEPS.length - 1;
  else if (event.key === 'Escape') return exit();
  if (next == null) return;
  event.preventDefault();
  go(next);
}

function buildDots() {
  STEPS = $('#measured').hidden ? STAGES : [...STAGES, 'measured'];
  $('#dots').replaceChildren(...STEPS.map((stage, k) => {
    const button = el('button', { type: 'button', class: 'dot', 'aria-label': t('tour_step', { i: k + 1, n: STEPS.length, title: stepTitle(k) }) });
    button.addEventListener('click', () => go(k));
    return el('li', { 'data-stage': stage }, [button, el('span', { class: 'dot-label', 'aria-hidden': 'true', text: stepTitle(k) })]);
  }));
}

export async function enter() {
  if (active) return;
  active = true;
  document.body.classList.add('classroom');
  $('#classroom').setAttribute('aria-pressed', 'true');
  $('#classroom').textContent = t('classroom_exit');
  $('#tour').hidden = false;
  if (document.fullscreenEnabled && !document.fullscreenElement) {
    document.documentElement.requestFullscreen?.().catch(() => {});
  }
  buildDots();
  go(0);
  await hooks.onEnter();
  go(step);
  $('#tour-next').focus();
}

export function exit() {
  if (!active) return;
  active = false;
  document.body.classList.remove('classroom');
  delete document.body.dataset.step;
  for (const band of $$('.band.current, #measured.current')) band.classList.remove('current');
  $('#classroom').setAttribute('aria-pressed', 'false');
  $('#classroom').textContent = t('classroom');
  $('#tour').hidden = true;
  if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
  $('#classroom').focus();
}

export const isActive = () => active;

export function initClassroom(options) {
  hooks = { ...hooks, ...options };
  $('#classroom').addEventListener('click', () => (active ? exit() : enter()));
  $('#tour-prev').addEventListener('click', () => go(step - 1));
  $('#tour-next').addEventListener('click', () => go(step + 1));
  document.addEventListener('keydown', onKey);
  // Leaving full screen (Esc is taken by the browser there) leaves classroom mode too.
  document.addEventListener('fullscreenchange', () => {
    if (!document.fullscreenElement && active) exit();
  });
}

// After new words (a level change), refresh the labels of the dots.
export function refreshDots() {
  if (active) {
    buildDots();
    go(step);
  }
}
