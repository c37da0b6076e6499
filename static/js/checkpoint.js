// "Watch it learn": a slider over the training checkpoints of a model (tiny: before training,
// 1 %, 10 %, finished). Moving it re-requests the maps and filters at that checkpoint.
import { $, el } from './dom.js';
import { t } from './i18n.js';

let list = []; // [{name, step, fraction}], in training order
let onPick = () => {};

const input = () => $('#checkpoint');
const word = (cp) => t(`ckpt_${cp.name}`);

function describe(i) {
  const cp = list[i];
  input().setAttribute('aria-valuetext', t('ckpt_value', { name: word(cp), step: cp.step }));
  for (const [k, tick] of [...$('#ckpt-ticks').children].entries()) tick.classList.toggle('on', k === i);
}

// The checkpoints of `model`; returns the chosen name (null: the finished model), or hides the slider.
export function setCheckpoints(model, wanted) {
  list = [...(model?.available ? model.checkpoints || [] : [])].sort((a, b) => a.step - b.step);
  $('#ckpt').hidden = list.length < 2;
  if (list.length < 2) return null;
  const range = input();
  range.max = String(list.length - 1);
  $('#ckpt-ticks').replaceChildren(...list.map((cp) => el('span', { text: word(cp) })));
  let i = list.findIndex((cp) => cp.name === wanted);
  if (i < 0) i = list.length - 1;
  range.value = String(i);
  describe(i);
  return isFinal(list[i].name) ? null : list[i].name;
}

export const isFinal = (name) => !name || name === list[list.length - 1]?.name;

export function initCheckpoint(pick) {
  onPick = pick;
  let timer = 0;
  input().addEventListener('input', () => {
    const i = Number(input().value);
    describe(i);
    // Dragging passes several stops: ask for the one the slider rests on.
    clearTimeout(timer);
    timer = setTimeout(() => onPick(isFinal(list[i].name) ? null : list[i].name), 120);
  });
}
