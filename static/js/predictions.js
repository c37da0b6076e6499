// The top-k predictions as labelled bars.
import { $, el, pct } from './dom.js';
import { t } from './i18n.js';

export function renderPredictions(predictions, { trained = true } = {}) {
  const list = $('#predictions');
  list.replaceChildren();
  list.setAttribute('aria-label', t('predictions_label', { k: predictions.length }));
  const best = predictions[0]?.probability || 1;
  predictions.forEach((p, rank) => {
    const bar = el('span', { class: 'bar' });
    bar.style.setProperty('--w', `${Math.max(1, (p.probability / best) * 100).toFixed(1)}%`);
    list.append(el('li', { class: rank === 0 ? 'pred top' : 'pred' }, [
      el('span', { class: 'pred-label', text: p.label }),
      el('span', { class: 'pred-pct', text: `${pct(p.probability)} %` }),
      el('span', { class: 'track', 'aria-hidden': 'true' }, [bar]),
    ]));
  });
  if (!trained) list.append(el('li', { class: 'pred-note', text: t('untrained') }));
  const best1 = predictions[0];
  $('#verdict').hidden = !best1;
  if (best1) {
    $('#verdict-label').textContent = best1.label;
    $('#verdict-pct').textContent = t(trained ? 'verdict_pct' : 'verdict_untrained', { pct: pct(best1.probability) });
  }
}
