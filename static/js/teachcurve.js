// The training curve: loss and accuracies per step, drawn into one canvas as the events arrive.
// The accuracies read on the left axis (0-100 %); the loss shares the plot's height as a share
// of its largest value, which the right axis names, so both can be read off the picture.
import { t } from './i18n.js';

const COLORS = { loss: '#4535c4', train: '#21918c', heldout: '#c9a400' };
const PAD = { left: 40, right: 36, top: 8, bottom: 18 };

export class Curve {
  constructor(canvas) {
    this.canvas = canvas;
    this.points = [];
  }

  reset() {
    this.points = [];
    this.draw();
  }

  add(progress) {
    this.points.push(progress);
    this.draw();
  }

  draw() {
    const { canvas, points } = this;
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth || 320;
    const height = canvas.clientHeight || 160;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    const style = getComputedStyle(canvas); // the page's ink (classroom mode is dark)
    const g = canvas.getContext('2d');
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, width, height);
    const right = width - PAD.right;
    const bottom = height - PAD.bottom;
    const py = (share) => bottom - share * (bottom - PAD.top);
    g.lineWidth = 1;
    g.strokeStyle = '#dfe3ee';
    g.fillStyle = style.color;
    g.font = '11px system-ui, sans-serif';
    g.textBaseline = 'middle';
    for (const share of [0, 0.5, 1]) {
      g.beginPath();
      g.moveTo(PAD.left, py(share) + 0.5);
      g.lineTo(right, py(share) + 0.5);
      g.stroke();
      g.textAlign = 'right';
      g.fillText(`${Math.round(share * 100)} %`, PAD.left - 4, py(share));
    }
    if (!points.length) return;
    const last = points[points.length - 1].step || 1;
    const top = Math.max(...points.map((p) => p.loss), 1e-6);
    g.textAlign = 'left';
    g.fillStyle = COLORS.loss;
    g.fillText(top.toPrecision(2), right + 4, py(1));
    g.fillText('0', right + 4, py(0));
    g.fillStyle = style.color;
    g.textBaseline = 'alphabetic';
    g.fillText('0', PAD.left, height - 4);
    g.textAlign = 'right';
    g.fillText(`${last} ${t('live_steps')}`, right, height - 4);
    const x = (step) => PAD.left + (step / last) * (right - PAD.left);
    const line = (value, color) => {
      g.strokeStyle = color;
      g.lineWidth = 2;
      g.beginPath();
      let started = false;
      for (const p of points) {
        const v = value(p);
        if (v == null) continue;
        if (started) g.lineTo(x(p.step), py(v));
        else g.moveTo(x(p.step), py(v));
        started = true;
      }
      g.stroke();
    };
    line((p) => p.loss / top, COLORS.loss);
    line((p) => p.train_accuracy, COLORS.train);
    line((p) => p.heldout_accuracy, COLORS.heldout);
  }
}
