// Every way a picture comes in: file picker, drag and drop, paste, and the sample gallery.
import { $, $$ } from './dom.js';

export function markChosen() {
  performance.clearMarks('ls:file-chosen');
  performance.clearMarks('ls:bands-drawn');
  performance.clearMarks('ls:response');
  performance.mark('ls:file-chosen');
}

const imageFile = (files) => [...(files || [])].find((f) => f.type.startsWith('image/'));

export function initInputs({ onImage, onError }) {
  const input = $('#file');
  input.addEventListener('change', () => {
    const file = imageFile(input.files);
    if (!file) return;
    markChosen();
    onImage(file, 'file');
    input.value = '';
  });

  const zone = $('#dropzone');
  const over = (on) => zone.classList.toggle('over', on);
  document.addEventListener('dragover', (e) => {
    if (![...e.dataTransfer.types].includes('Files')) return;
    e.preventDefault();
    over(true);
  });
  document.addEventListener('dragleave', (e) => e.relatedTarget == null && over(false));
  document.addEventListener('drop', (e) => {
    e.preventDefault();
    over(false);
    const file = imageFile(e.dataTransfer?.files);
    if (file) {
      markChosen();
      onImage(file, 'drop');
    }
  });

  document.addEventListener('paste', (e) => {
    const item = [...(e.clipboardData?.items || [])].find((i) => i.kind === 'file' && i.type.startsWith('image/'));
    const file = item?.getAsFile();
    if (!file) return;
    e.preventDefault();
    markChosen();
    onImage(file, 'paste');
  });

  for (const button of $$('.sample')) {
    button.addEventListener('click', async () => {
      markChosen();
      try {
        const response = await fetch(button.dataset.src);
        if (!response.ok) throw new Error(response.statusText);
        const blob = await response.blob();
        onImage(new File([blob], button.dataset.src.split('/').pop(), { type: blob.type }), 'sample');
      } catch (err) {
        onError(err);
      }
    });
  }
}

export async function loadFirstSample(kind = 'world') {
  const button = $(`.sample[data-kind="${kind}"]`) || $('.sample');
  button?.click();
}
