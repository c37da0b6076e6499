// The measured hierarchy: what the dissection found in each layer, drawn from the model's
// own metrics (GET /api/v1/models -> metrics.dissection), for models that have one (tiny).
import { $, el } from './dom.js';
import { fill, t, texts } from './i18n.js';

const SVG = 'http://www.w3.org/2000/svg';
const TARGET = 0.2; // the bar for "this concept has a detector"
const W = 360;
const H = 210;
const PLOT = { left: 42, right: 350, top: 14, bottom: 176 };
const KINDS = [ // dissection's unit categories, stacked bottom to top (colours: app.css)
  { key: 'edge/colour', label: 'measured_edges', cls: 'kind-edges' },
  { key: 'part', label: 'measured_parts', cls: 'kind-parts' },
  { key: 'object', label: 'measured_objects', cls: 'kind-objects' },
];

let current = null; // {dissection, level}

function svg(tag, attrs = {}, children = []) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  for (const child of children) node.append(child);
  return node;
}

const tip = (text) => svg('title', {}, [document.createTextNode(text)]);
const label = (x, y, text, attrs = {}) => svg('text', { x, y, ...attrs }, [document.createTextNode(text)]);
const yOf = (v) => PLOT.bottom - v * (PLOT.bottom - PLOT.top);
const pctText = (v) => `${Math.round(v * 100)}\u00a0%`;

function axes(root, titles, ticks, format) {
  for (const v of ticks) {
    root.append(svg('line', { x1: PLOT.left, x2: PLOT.right, y1: yOf(v), y2: yOf(v), class: 'grid-line' }));
    root.append(label(PLOT.left - 6, yOf(v) + 4, format(v), { 'text-anchor': 'end', class: 'tick' }));
  }
  const step = (PLOT.right - PLOT.left) / titles.length;
  titles.forEach((title, i) => {
    root.append(label(PLOT.left + step * (i + 0.5), PLOT.bottom + 18, title, { 'text-anchor': 'middle', class: 'tick' }));
  });
  return step;
}

// Shares of edge/colour units, part detectors and object detectors per layer; the untrained
// twin's bar beside each, paler: what training added.
function unitsChart(d) {
  const titles = Object.keys(d.trained);
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', 'data-chart': 'units', role: 'img' });
  const step = axes(root, titles, [0, 0.5, 1], pctText);
  titles.forEach((title, i) => {
    for (const [which, x, width] of [['trained', 0.14, 0.42], ['untrained', 0.6, 0.26]]) {
      let base = 0;
      for (const kind of KINDS) {
        const share = d[which][title].category_share[kind.key];
        const rect = svg('rect', {
          x: PLOT.left + step * (i + x), width: step * width, y: yOf(base + share),
          height: yOf(base) - yOf(base + share), class: `share ${which} ${kind.cls}`,
          'data-layer': title, 'data-which': which, 'data-kind': kind.key, 'data-value': share,
        }, [tip(`${title}, ${t(which === 'trained' ? 'measured_trained' : 'measured_untrained')}: ${t(kind.label)} ${pctText(share)}`)]);
        root.append(rect);
        base += share;
      }
    }
  });
  root.setAttribute('aria-label', t('measured_units_aria', {
    first: pctText(detectors(d.trained[titles[0]])), last: pctText(detectors(d.trained[titles.at(-1)])),
  }));
  return root;
}

const detectors = (layer) => layer.part_detectors + layer.object_detectors;

function concepts(d) {
  const parts = Object.keys(d.targets?.part_best_iou_conv2_5 ?? {});
  const objects = Object.keys(d.targets?.object_best_iou_conv5 ?? {});
  const all = Object.keys(Object.values(d.trained)[0].best_iou);
  return { parts, objects, others: all.filter((c) => !parts.includes(c) && !objects.includes(c)) };
}

function seriesFor(d, choice) {
  const titles = Object.keys(d.trained);
  const { parts, objects } = concepts(d);
  const names = choice === ':parts' ? parts : choice === ':objects' ? objects : [choice];
  const mean = (get) => titles.map((title) => names.reduce((s, c) => s + get(title, c), 0) / names.length);
  const out = [
    { key: 'unit', label: 'measured_unit', values: mean((x, c) => d.trained[x].best_iou[c]) },
    { key: 'untrained', label: 'measured_unit_untrained', values: mean((x, c) => d.untrained[x].best_iou[c]) },
  ];
  if (d.trained[titles[0]].probe_iou) {
    out.splice(1, 0, { key: 'combination', label: 'measured_combo', values: mean((x, c) => d.trained[x].probe_iou[c]) });
  }
  if (d.ceiling_iou) out.push({ key: 'ideal', label: 'measured_ideal', values: mean((x, c) => d.ceiling_iou[x][c]) });
  return { titles, series: out };
}

// Best IoU per layer: single unit, best combination of units, untrained twin, ideal unit.
function iouChart(d, choice, name) {
  const { titles, series } = seriesFor(d, choice);
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', 'data-chart': 'iou', role: 'img' });
  const step = axes(root, titles, [0, 0.2, 0.4, 0.6, 0.8, 1], (v) => v.toFixed(1));
  root.append(svg('line', { x1: PLOT.left, x2: PLOT.right, y1: yOf(TARGET), y2: yOf(TARGET), class: 'target-line' }));
  for (const s of series) {
    const points = s.values.map((v, i) => [PLOT.left + step * (i + 0.5), yOf(v)]);
    root.append(svg('polyline', { points: points.map((p) => p.join(',')).join(' '), class: `series ${s.key}`, 'data-series': s.key }));
    s.values.forEach((v, i) => {
      root.append(svg('circle', {
        cx: points[i][0], cy: points[i][1], r: 3.2, class: `dot ${s.key}`,
        'data-series': s.key, 'data-layer': titles[i], 'data-value': v,
      }, [tip(`${titles[i]}: ${t(s.label)} ${v.toFixed(2)}`)]));
    });
  }
  const unit = series.find((s) => s.key === 'unit').values.at(-1);
  root.setAttribute('aria-label', t('measured_iou_aria', { concept: name, layer: titles.at(-1), iou: unit.toFixed(2) }));
  return { root, series };
}

function legend(items) {
  return el('ul', { class: 'chart-legend' }, items.map(([cls, text]) => el('li', {}, [
    el('span', { class: `swatch ${cls}`, 'aria-hidden': 'true' }), document.createTextNode(text),
  ])));
}

function conceptSelect(d, choice, onChange) {
  const { parts, objects, others } = concepts(d);
  const select = el('select', { id: 'measured-concept', 'data-testid': 'measured-concept' });
  const option = (value, text) => el('option', { value, text, selected: value === choice });
  select.append(option(':parts', t('measured_mean_parts')), option(':objects', t('measured_mean_objects')));
  for (const [group, names] of [['measured_parts', parts], ['measured_objects', [...objects, ...others]]]) {
    select.append(el('optgroup', { label: t(group) }, names.map((c) => option(c, c))));
  }
  select.addEventListener('change', () => onChange(select.value));
  return select;
}

function nameOf(choice) {
  return choice === ':parts' ? t('measured_mean_parts') : choice === ':objects' ? t('measured_mean_objects') : choice;
}

function words(d, level) {
  const tg = d.targets ?? {};
  const count = (o) => Object.values(o ?? {}).filter((v) => v >= TARGET).length;
  const titles = Object.keys(d.trained);
  return fill(texts().measured?.[level] ?? '', {
    images: d.images, seed: d.seed,
    first: pctText(detectors(d.trained[titles[0]])), last: pctText(detectors(d.trained[titles.at(-1)])),
    unit_parts: count(tg.part_best_iou_conv2_5), probe_parts: count(tg.part_best_probe_iou_conv2_5),
    n_parts: Object.keys(tg.part_best_iou_conv2_5 ?? {}).length,
    unit_objects: count(tg.object_best_iou_conv5), probe_objects: count(tg.object_best_probe_iou_conv5),
    n_objects: Object.keys(tg.object_best_iou_conv5 ?? {}).length,
    ceiling: d.ceiling_iou ? Math.min(...Object.values(d.ceiling_iou[titles.at(-1)])).toFixed(2) : '?',
  });
}

function draw(choice = ':parts') {
  const { dissection: d, level } = current;
  const charts = $('#measured-charts');
  const unitsFigure = el('div', { class: 'chart-box' }, [
    el('h3', { class: 'chart-title', text: t('measured_units') }), unitsChart(d),
    legend([...KINDS.map((k) => [k.cls, t(k.label)]), ['kind-edges pale', t('measured_untrained_bar')]]),
  ]);
  const { root, series } = iouChart(d, choice, nameOf(choice));
  const iouFigure = el('div', { class: 'chart-box' }, [
    el('h3', { class: 'chart-title' }, [
      el('label', { for: 'measured-concept', text: t('measured_iou') }), conceptSelect(d, choice, draw),
    ]),
    root,
    legend([...series.map((s) => [`line ${s.key}`, t(s.label)]), ['line target', t('measured_target')]]),
  ]);
  charts.replaceChildren(unitsFigure, iouFigure);
  $('#measured-text').textContent = words(d, level);
  $('#measured-note').textContent = t('measured_note', { images: d.images, seed: d.seed, probe_seed: d.probe_seed ?? '' });
}

// Shown for a model whose metrics carry a dissection (its final weights); hidden otherwise.
export function showMeasured(model, level) {
  const d = model?.available ? model.metrics?.dissection : null;
  const drawable = Boolean(d?.trained) && Object.values(d.trained).every((layer) => layer.category_share);
  $('#measured').hidden = !drawable;
  if (!drawable) {
    current = null;
    $('#measured-charts').replaceChildren();
    return;
  }
  const previous = $('#measured-concept')?.value;
  const { parts, objects, others } = concepts(d);
  const known = [':parts', ':objects', ...parts, ...objects, ...others].includes(previous);
  current = { dissection: d, level };
  draw(known ? previous : ':parts');
}
