// The class cards: a name each (editable until teaching starts), its examples' count and thumbnails.
import { el } from './dom.js';
import { t } from './i18n.js';

const THUMBS = 12; // the latest examples a card shows

export class Cards {
  constructor(container, { onRecord, onUpload, onChange, onSample }) {
    this.container = container;
    this.hooks = { onRecord, onUpload, onChange, onSample };
    this.cards = [];
  }

  get names() {
    return this.cards.map((card) => card.name.value.trim());
  }

  render(names, locked) {
    this.container.replaceChildren();
    this.cards = names.map((name, index) => this.card(name, index, locked, names.length));
  }

  card(name, index, locked, count) {
    const input = el('input', { class: 'teach-name', type: 'text', value: name, maxLength: 32, readOnly: locked,
      'aria-label': t('teach_class_name', { n: index + 1 }), 'data-testid': `teach-name-${index}` });
    input.addEventListener('input', () => this.hooks.onChange());
    const counter = el('p', { class: 'teach-count', 'data-testid': `teach-count-${index}`, text: t('teach_examples', { n: 0 }) });
    const thumbs = el('ul', { class: 'teach-thumbs', 'aria-label': t('teach_thumbs', { name }) });
    const record = el('button', { type: 'button', class: 'btn btn-accent teach-record', 'aria-pressed': 'false',
      'data-testid': `teach-record-${index}`, text: t('teach_hold'), disabled: !locked });
    const file = el('input', { type: 'file', accept: 'image/*', multiple: true, class: 'visually-hidden',
      id: `teach-file-${index}`, 'data-testid': `teach-upload-${index}`, disabled: !locked });
    file.addEventListener('change', () => {
      this.hooks.onUpload(index, [...file.files]);
      file.value = '';
    });
    const upload = el('label', { class: 'btn', for: `teach-file-${index}`, text: t('teach_upload') });
    const tools = [record, upload, file, this.samples(index, locked)];
    if (!locked && count > 2) {
      const remove = el('button', { type: 'button', class: 'btn btn-quiet', text: t('teach_remove') });
      remove.addEventListener('click', () => this.hooks.onChange(index));
      tools.push(remove);
    }
    const node = el('li', { class: 'teach-card' }, [input, counter, thumbs, el('div', { class: 'teach-tools' }, tools)]);
    this.container.append(node);
    this.hooks.onRecord(index, record);
    return { name: input, counter, thumbs, record, upload };
  }

  // The gallery's pictures, offered as examples: a toggle and the list it opens.
  samples(index, locked) {
    const gallery = [...document.querySelectorAll('.sample[data-src]')];
    const list = el('ul', { class: 'teach-samples', hidden: true, 'data-testid': `teach-samples-${index}` });
    for (const sample of gallery) {
      const img = el('img', { src: sample.dataset.src, alt: sample.title, width: 40, height: 40 });
      const pick = el('button', { type: 'button', class: 'teach-sample', title: sample.title }, [img]);
      pick.addEventListener('click', () => this.hooks.onSample(index, sample.dataset.src));
      list.append(el('li', {}, [pick]));
    }
    const toggle = el('button', { type: 'button', class: 'btn', 'aria-expanded': 'false', text: t('teach_samples'),
      disabled: !locked || !gallery.length, 'data-testid': `teach-samples-toggle-${index}` });
    toggle.addEventListener('click', () => {
      list.hidden = !list.hidden;
      toggle.setAttribute('aria-expanded', String(!list.hidden));
    });
    return el('span', { class: 'teach-sample-box' }, [toggle, list]);
  }

  setCount(index, count) {
    this.cards[index].counter.textContent = t('teach_examples', { n: count });
  }

  // One more example of class `index`: the new count and the picture's thumbnail.
  added(index, count, blob) {
    const card = this.cards[index];
    card.counter.textContent = t('teach_examples', { n: count });
    const url = URL.createObjectURL(blob);
    const img = el('img', { src: url, alt: '', width: 40, height: 40 });
    img.addEventListener('load', () => URL.revokeObjectURL(url), { once: true });
    card.thumbs.prepend(el('li', {}, [img]));
    while (card.thumbs.children.length > THUMBS) card.thumbs.lastElementChild.remove();
  }
}
