// The top-k predictions as labelled bars; each row is a button that asks for its Grad-CAM.
import { $, el, pct } from './dom.js';
import { t } from './i18n.js';

// One class's label, its percentage and a bar as long as its probability: a network that is
// 0.5 % sure of its best guess shows a sliver, not a full bar.
export function predictionParts(p) {
  const bar = el('span', { class: 'bar' });
  bar.style.setProperty('--w', `${Math.max(0.5, p.probability * 100).toFixed(1)}%`);
  return [
    el('span', { class: 'pred-label', text: p.label }),
    el('span', { class: 'pred-pct', text: `${pct(p.probability)} %` }),
    el('span', { class: 'track', 'aria-hidden': 'true' }, [bar]),
  ];
}

export function renderPredictions(predictions, { trained = true, onPick = null } = {}) {
  const list = $('#predictions');
  list.replaceChildren();
  list.setAttribute('aria-label', t('predictions_label', { k: predictions.length }));
  predictions.forEach((p, rank) => {
    const parts = predictionParts(p);
    let row = parts;
    if (onPick) {
      const button = el('button', {
        type: 'button', class: 'pred-btn', 'aria-pressed': 'false', title: t('pred_button', { label: p.label }),
        'data-index': String(p.index),
      }, parts);
      button.addEventListener('click', () => onPick(p, button));
      row = [button];
    }
    list.append(el('li', { class: `${rank === 0 ? 'pred top' : 'pred'}${onPick ? ' pickable' : ''}` }, row));
  });
  if (!trained) list.append(el('li', { class: 'pred-note', text: t('untrained') }));
  $('#pred-hint').hidden = !onPick || !predictions.length;
  const best1 = predictions[0];
  $('#verdict').hidden = !best1;
  if (best1) {
    $('#verdict-label').textContent = best1.label;
    $('#verdict-pct').textContent = t(trained ? 'verdict_pct' : 'verdict_untrained', { pct: pct(best1.probability) });
  }
}

// Unfamiliar input (a model with a familiarity score): a plain-words notice near the
// prediction and, where `offer` ({ title, go }) names a photo model, one click to it.
export function renderOod(ood, words, offer = null) {
  const note = $('#ood');
  const on = Boolean(ood?.unfamiliar);
  note.hidden = !on;
  note.textContent = on ? words : '';
  if (on && offer) {
    const look = el('button', { type: 'button', class: 'btn look-through', text: t('ood_look_through', { title: offer.title }) });
    look.addEventListener('click', offer.go);
    note.append(' ', look);
  }
  $('#verdict-ood').hidden = !on;
}
