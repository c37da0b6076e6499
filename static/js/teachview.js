// What the taught head says: its classes beside the base model's own answer, and the units used.
import { unit } from './api.js';
import { $, el, num } from './dom.js';
import { t } from './i18n.js';
import { predictionParts } from './predictions.js';

function bars(list, predictions) {
  list.replaceChildren();
  for (const [rank, p] of predictions.entries()) {
    list.append(el('li', { class: rank === 0 ? 'pred top' : 'pred' }, predictionParts(p)));
  }
}

const unitText = (u) => `${t('teach_unit', { title: u.title, unit: u.unit })}${u.label ? ` · ${u.description || u.label}` : ''}`;

export function showPrediction(body) {
  bars($('#teach-taught'), body.predictions);
  bars($('#teach-base'), body.base.predictions.slice(0, 3));
  $('#teach-base-title').textContent = t('teach_base_title', { model: body.base.model });
  const list = $('#teach-why');
  list.replaceChildren(...body.units.map((u) => el('li', { text: `${unitText(u)} (${num(u.weight)})` })));
  $('#teach-why-title').textContent = t('teach_why', { label: body.predictions[0]?.label ?? '' });
  const cam = body.cam;
  $('#teach-cam-fig').hidden = !cam;
  if (cam) {
    $('#teach-cam-seen').src = cam.picture;
    $('#teach-cam-heat').src = cam.heatmap;
    $('#teach-cam-cap').textContent = t('teach_cam', { label: cam.label });
  }
  $('#teach-live-out').hidden = false;
}

// After training: for each class, the units it leans on, each with its feature visualization.
export async function showLeaning(model, classes, signal) {
  const box = $('#teach-units');
  box.replaceChildren();
  const pending = [];
  for (const c of classes) {
    const row = el('ul', { class: 'teach-unit-row' });
    for (const u of c.units.slice(0, 3)) {
      const img = el('img', { alt: '', width: 64, height: 64, class: 'teach-featvis' });
      row.append(el('li', {}, [img, el('span', { class: 'small', text: unitText(u) })]));
      pending.push([u, img]);
    }
    box.append(el('section', { class: 'teach-class-units' }, [
      el('h4', { text: t('teach_class_units', { label: c.label }) }), row,
    ]));
  }
  $('#teach-units-wrap').hidden = !classes.length;
  for (const [u, img] of pending) { // one at a time: a computed one is a long job of this client
    if (signal.aborted) return;
    try {
      const detail = await unit(model, u.layer, u.unit, { signal });
      img.src = detail.featvis.png;
      img.alt = t('teach_featvis', { title: u.title, unit: u.unit });
    } catch {
      img.hidden = true; // the words stand without the picture
    }
  }
}
