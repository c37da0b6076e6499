// The webcam: a snapshot, or a live mode that sends small square frames, one request at a time.
import { $ } from './dom.js';
import { grab } from './frame.js';
import { t } from './i18n.js';

let stream = null;
let live = false;
let frames = [];

function show(running) {
  $('#cam-start').hidden = running;
  for (const id of ['#cam-snap', '#cam-live', '#cam-stop']) $(id).hidden = !running;
  $('#video').hidden = !running;
}

function setLive(on) {
  live = on;
  $('#cam-live').setAttribute('aria-pressed', String(on));
  $('#cam-live').classList.toggle('on', on);
  $('#fps').textContent = '';
  frames = [];
}

export const isLive = () => live;

export function initWebcam({ onSnapshot, onFrame, frameSize, onError }) {
  const video = $('#video');

  async function start() {
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
      video.srcObject = stream;
      await video.play();
      show(true);
      $('#cam-snap').focus();
    } catch (err) {
      onError(new Error(t('camera_denied', { reason: err.message || err.name })));
    }
  }

  function stop() {
    setLive(false);
    stream?.getTracks().forEach((track) => track.stop());
    stream = null;
    video.srcObject = null;
    show(false);
    $('#cam-start').focus();
  }

  async function loop() {
    while (live && stream) {
      const blob = await grab(video, frameSize());
      try {
        await onFrame(blob); // resolves once the frame is drawn: never more than one in flight
      } catch (err) {
        if (err.status === 429 || err.status === 503) {
          // The server asks us to slow down: wait as long as it says, then carry on.
          $('#fps').textContent = t('live_wait');
          await new Promise((resolve) => setTimeout(resolve, 1000 * (err.retryAfter ?? 1)));
          continue;
        }
        onError(err);
        setLive(false);
        return;
      }
      const now = performance.now();
      frames.push(now);
      frames = frames.filter((f) => now - f < 2000);
      if (frames.length > 1) $('#fps').textContent = t('live_fps', { fps: ((frames.length - 1) / ((now - frames[0]) / 1000)).toFixed(1) });
    }
  }

  $('#cam-start').addEventListener('click', start);
  $('#cam-stop').addEventListener('click', stop);
  $('#cam-snap').addEventListener('click', async () => {
    setLive(false);
    onSnapshot(await grab(video, Math.max(frameSize(), Math.min(448, video.videoHeight))));
  });
  $('#cam-live').addEventListener('click', () => {
    setLive(!live);
    if (live) loop();
  });
}
