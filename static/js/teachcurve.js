// The training curve: loss and accuracies per step, drawn into one canvas as the events arrive.
const COLORS = { loss: '#4535c4', train: '#21918c', heldout: '#c9a400' };

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
    const height = canvas.clientHeight || 140;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    const g = canvas.getContext('2d');
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, width, height);
    g.strokeStyle = '#dfe3ee';
    g.strokeRect(0.5, 0.5, width - 1, height - 1);
    if (!points.length) return;
    const last = points[points.length - 1].step || 1;
    const top = Math.max(...points.map((p) => p.loss), 1e-6);
    const x = (step) => 4 + (step / last) * (width - 8);
    const line = (value, color) => {
      g.strokeStyle = color;
      g.lineWidth = 2;
      g.beginPath();
      points.forEach((p, i) => {
        const v = value(p);
        if (v == null) return;
        const y = height - 4 - v * (height - 8);
        if (i === 0) g.moveTo(x(p.step), y);
        else g.lineTo(x(p.step), y);
      });
      g.stroke();
    };
    line((p) => p.loss / top, COLORS.loss);
    line((p) => p.train_accuracy, COLORS.train);
    line((p) => p.heldout_accuracy, COLORS.heldout);
  }
}
