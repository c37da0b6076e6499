// One unit in the close-up: its dissection label, its feature visualization ("what it looks
// for in general"), its top-9 patches and guided backprop on your picture ("what it sees here").
// Everything loads in the background; AlexNet's pictures are computed on demand (slow).
import { $ } from './dom.js';
import { backprop, unit } from './api.js';
import { t } from './i18n.js';

let controller = null;
let backpropUrl = null;

// A unit that training gave a part type to find says so beside what dissection found in it:
// the two can differ, and a taught detector must not pass for a found one.
export function unitTitle(layerTitle, c, info) {
  const taught = info?.taught ? ` ${t('unit_taught', { part: info.taught })}` : '';
  if (info?.named) return t('unit_title', { layer: layerTitle, c, description: info.description, iou: Number(info.iou).toFixed(2) }) + taught;
  if (info?.description) return t('unit_other', { layer: layerTitle, c, description: info.description }) + taught;
  return t('unit_unnamed', { layer: layerTitle, c }) + taught;
}

export function clearUnit() {
  controller?.abort();
  controller = null;
  for (const id of ['#uv-featvis', '#uv-patches', '#uv-backprop', '#unit-busy']) $(id).hidden = true;
  if (backpropUrl) URL.revokeObjectURL(backpropUrl);
  backpropUrl = null;
}

async function setImage(img, src, alt) {
  img.src = src;
  img.alt = alt;
  await img.decode();
}

// `label`: the unit's record from the layer listing, if already known; `note`: an extra caveat.
export function showUnit({ model, layer, c, blob, label, note }) {
  clearUnit();
  controller = new AbortController();
  const { signal } = controller;
  const names = { layer: layer.title, c };
  $('#unit-label').textContent = [label ? unitTitle(layer.title, c, label) : '', note || ''].filter(Boolean).join(' ');
  const busy = $('#unit-busy');
  busy.textContent = t(model.input_size > 128 ? 'unit_busy_slow' : 'unit_busy'); // a photo-sized network optimizes slowly
  busy.classList.remove('error');
  busy.hidden = false;
  const fail = (err) => {
    if (signal.aborted || err.name === 'AbortError') return;
    busy.textContent = t('unit_error', { detail: err.message });
    busy.classList.add('error');
    busy.hidden = false;
  };
  const info = unit(model.id, layer.name, c, { signal }).then(async (body) => {
    if (signal.aborted) return;
    $('#unit-label').textContent = [unitTitle(layer.title, c, body), note || ''].filter(Boolean).join(' ');
    await setImage($('#featvis'), body.featvis.png, t('featvis_alt', names));
    if (signal.aborted) return;
    $('#uv-featvis').hidden = false;
    if (body.patches) {
      await setImage($('#patches'), body.patches.png, t('patches_alt', names));
      if (signal.aborted) return;
      $('#uv-patches').hidden = false;
    }
    busy.hidden = true;
  }).catch(fail);
  if (blob) {
    backprop(model.id, layer.name, c, blob, { signal }).then(async (png) => {
      if (signal.aborted) return;
      backpropUrl = URL.createObjectURL(png);
      await setImage($('#backprop'), backpropUrl, t('backprop_alt', names));
      if (!signal.aborted) $('#uv-backprop').hidden = false;
    }).catch(fail);
  }
  return info;
}
