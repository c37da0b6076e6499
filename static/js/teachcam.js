// The teaching panel's own webcam: start and stop it, grab square frames, record while held.
import { grab } from './frame.js';

export class TeachCam {
  constructor(video) {
    this.video = video;
    this.stream = null;
  }

  get running() {
    return Boolean(this.stream);
  }

  async start() {
    this.stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
    this.video.srcObject = this.stream;
    await this.video.play();
  }

  stop() {
    this.stream?.getTracks().forEach((track) => track.stop());
    this.stream = null;
    this.video.srcObject = null;
  }

  // The centre square of the current frame, as a JPEG of `size` pixels a side.
  grab(size = 224) {
    return grab(this.video, size);
  }
}

// While `button` is held (pointer, or Space/Enter), `onFrame()` every `1000 / fps` ms; a frame
// still being sent when the next is due is not doubled, the next one waits for it.
export function holdToRecord(button, onFrame, { fps = 5, onChange = () => {} } = {}) {
  let timer = null;
  let busy = false;
  const tick = async () => {
    if (busy) return;
    busy = true;
    try {
      await onFrame();
    } finally {
      busy = false;
    }
  };
  const start = (event) => {
    event.preventDefault();
    if (timer || button.disabled) return;
    tick();
    timer = setInterval(tick, 1000 / fps);
    button.setAttribute('aria-pressed', 'true');
    onChange(true);
  };
  const stop = () => {
    if (!timer) return;
    clearInterval(timer);
    timer = null;
    button.setAttribute('aria-pressed', 'false');
    onChange(false);
  };
  button.addEventListener('pointerdown', start);
  for (const name of ['pointerup', 'pointerleave', 'pointercancel', 'blur']) button.addEventListener(name, stop);
  button.addEventListener('keydown', (event) => { if ((event.key === ' ' || event.key === 'Enter') && !event.repeat) start(event); });
  button.addEventListener('keyup', (event) => { if (event.key === ' ' || event.key === 'Enter') stop(); });
  button.addEventListener('contextmenu', (event) => event.preventDefault());
}
