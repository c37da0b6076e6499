// A small line chart on a canvas: several named series of (x, y) points on shared axes,
// with a legend; used for the live run's loss and held-out accuracy.

export function drawLines(canvas, series, { yMax = null, xLabel = '' } = {}) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 360;
  const height = canvas.clientHeight || 160;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const style = getComputedStyle(canvas); // the page's ink and rule colours (classroom mode is dark)
  const ink = style.color;
  const grid = style.getPropertyValue('--line').trim() || ink;
  const g = canvas.getContext('2d');
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, width, height);
  const left = 36;
  const bottom = height - 18;
  const points = series.flatMap((s) => s.points);
  const xEnd = Math.max(1, ...points.map(([x]) => x));
  const yTop = yMax ?? Math.max(1e-6, ...points.map(([, y]) => y));
  const px = (x) => left + (x / xEnd) * (width - left - 6);
  const top = 20; // room for the legend above the plot
  const py = (y) => bottom - (y / yTop) * (bottom - top);
  g.strokeStyle = grid;
  g.strokeRect(left + 0.5, top + 0.5, width - left - 6, bottom - top);
  g.fillStyle = ink;
  g.font = '11px system-ui, sans-serif';
  g.fillText(yTop.toFixed(yTop < 2 ? 1 : 0), 2, top + 10);
  g.fillText('0', 2, bottom);
  g.fillText(xLabel, left, height - 4);
  let legendX = width - 8;
  for (const s of [...series].reverse()) {
    if (s.points.length) {
      g.strokeStyle = s.color;
      g.lineWidth = 2;
      g.setLineDash(s.dash || []);
      g.beginPath();
      s.points.forEach(([x, y], i) => (i ? g.lineTo(px(x), py(y)) : g.moveTo(px(x), py(y))));
      g.stroke();
      g.setLineDash([]);
    }
    const w = g.measureText(s.label).width;
    legendX -= w + 22;
    g.fillStyle = s.color;
    g.fillRect(legendX, 4, 12, 4);
    g.fillStyle = ink;
    g.fillText(s.label, legendX + 16, 10);
  }
}
