// Grad-CAM beside the predictions: "where is the evidence for 'car'?" for any top-k class.
import { $, $$ } from './dom.js';
import { gradcam } from './api.js';
import { t } from './i18n.js';

let controller = null;

export function clearCam() {
  controller?.abort();
  controller = null;
  $('#cam').hidden = true;
  $('#cam-heat').removeAttribute('src');
  for (const b of $$('.pred-btn')) b.setAttribute('aria-pressed', 'false');
}

export async function showCam(model, blob, prediction, button, seenSrc) {
  controller?.abort();
  controller = new AbortController();
  const mine = controller;
  for (const b of $$('.pred-btn')) b.setAttribute('aria-pressed', String(b === button));
  const figure = $('#cam');
  const cap = $('#cam-cap');
  $('#cam-seen').src = seenSrc;
  $('#cam-seen').alt = '';
  figure.hidden = false;
  figure.classList.add('busy');
  cap.textContent = t('cam_working', { label: prediction.label });
  try {
    const body = await gradcam(model.id, blob, { classIndex: prediction.index, signal: mine.signal });
    const heat = $('#cam-heat');
    heat.src = body.heatmap;
    await heat.decode();
    if (mine.signal.aborted) return;
    heat.alt = t('cam_alt', { label: body.label });
    const title = model.layers?.find((l) => l.name === body.layer)?.title || body.layer;
    cap.textContent = t('cam_caption', { label: body.label, layer: title });
  } catch (err) {
    if (err.name === 'AbortError' || mine.signal.aborted) return;
    cap.textContent = t('error', { detail: err.message });
  } finally {
    if (!mine.signal.aborted) figure.classList.remove('busy');
  }
}
