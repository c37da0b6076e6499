// The measured hierarchy: what the dissection found in each layer, drawn from the model's
// own metrics (GET /api/v1/models -> metrics.dissection), for models that have one (tiny);
// and, where the model measured it (metrics.reliance), which parts its answers need.
import { $, el } from './dom.js';
import { fill, t, texts } from './i18n.js';

const SVG = 'http://www.w3.org/2000/svg';
const TARGET = 0.2; // the IoU a unit needs before "this concept has a detector" is said
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

// Horizontal grid lines with their values on the left, at heights ``y(v)``.
function yGrid(root, ticks, format, y = yOf) {
  for (const v of ticks) {
    root.append(svg('line', { x1: PLOT.left, x2: PLOT.right, y1: y(v), y2: y(v), class: 'grid-line' }));
    root.append(label(PLOT.left - 6, y(v) + 4, format(v), { 'text-anchor': 'end', class: 'tick' }));
  }
}

function axes(root, titles, ticks, format) {
  yGrid(root, ticks, format);
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

// Spearman's rank correlation (no ties expected in measured fractions).
function rankCorrelation(a, b) {
  const ranks = (v) => {
    const order = v.map((x, i) => [x, i]).sort((p, q) => p[0] - q[0]);
    const r = new Array(v.length);
    order.forEach(([, i], k) => { r[i] = k; });
    return r;
  };
  const [ra, rb] = [ranks(a), ranks(b)];
  const mean = (v) => v.reduce((s, x) => s + x, 0) / v.length;
  const [ma, mb] = [mean(ra), mean(rb)];
  let num = 0, da = 0, db = 0;
  ra.forEach((x, i) => { num += (x - ma) * (rb[i] - mb); da += (x - ma) ** 2; db += (rb[i] - mb) ** 2; });
  return num / Math.sqrt(da * db);
}

function needed(d, r) {
  const best = d.targets?.part_best_iou_conv2_5 ?? {};
  const parts = Object.keys(r?.parts ?? {}).filter((p) => p in best);
  return parts.map((p) => ({ part: p, changed: r.parts[p].class_changed, iou: best[p] }));
}

const ceilTo = (v, step, floor) => Math.max(floor, Math.ceil(v / step - 1e-9) * step);

// Each part type: how often leaving it out of a picture changes the class (x), against its
// best single unit's IoU (y). Parts the answer needs are the parts a unit finds.
function needsChart(rows) {
  const xMax = ceilTo(Math.max(...rows.map((p) => p.changed)), 0.2, 0.2);
  const yMax = ceilTo(Math.max(...rows.map((p) => p.iou), TARGET), 0.1, 0.3);
  const xOf = (v) => PLOT.left + (v / xMax) * (PLOT.right - PLOT.left);
  const yAt = (v) => PLOT.bottom - (v / yMax) * (PLOT.bottom - PLOT.top);
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', 'data-chart': 'needs', role: 'img' });
  yGrid(root, Array.from({ length: Math.round(yMax / 0.1) + 1 }, (_, i) => i * 0.1), (v) => v.toFixed(1), yAt);
  for (let v = 0; v <= xMax + 1e-9; v += 0.2) {
    root.append(label(xOf(v), PLOT.bottom + 16, pctText(v), { 'text-anchor': 'middle', class: 'tick' }));
  }
  root.append(label((PLOT.left + PLOT.right) / 2, PLOT.bottom + 31, t('measured_needs_x'), { 'text-anchor': 'middle', class: 'tick' }));
  root.append(svg('line', { x1: PLOT.left, x2: PLOT.right, y1: yAt(TARGET), y2: yAt(TARGET), class: 'target-line' }));
  const sorted = [...rows].sort((a, b) => a.changed - b.changed);
  // Boxes taken so far (every dot, then each name placed): a part's name goes where it overlaps none.
  const placed = sorted.map((p) => ({ x: xOf(p.changed) - 5, y: yAt(p.iou) - 5, w: 10, h: 10 }));
  const overlaps = (b) => placed.some((o) => b.x < o.x + o.w && o.x < b.x + b.w && b.y < o.y + o.h && o.y < b.y + b.h);
  for (const p of sorted) {
    root.append(svg('circle', {
      cx: xOf(p.changed), cy: yAt(p.iou), r: 4, class: `need ${p.iou >= TARGET ? 'found' : 'missing'}`,
      'data-part': p.part, 'data-changed': p.changed, 'data-iou': p.iou,
    }, [tip(t('measured_needs_tip', { part: p.part, changed: pctText(p.changed), iou: p.iou.toFixed(2) }))]));
  }
  for (const p of sorted) {
    const [cx, cy] = [xOf(p.changed), yAt(p.iou)];
    // A generous box (the tick font's widest letters, ascent and descent), so names never touch.
    const w = 6.8 * p.part.length;
    // Beside the dot first, then above or below it, then a line further away.
    const spots = [[cx + 7, cy + 4, 'start'], [cx - 7, cy + 4, 'end'], [cx - w / 2, cy - 8, 'start'],
      [cx - w / 2, cy + 16, 'start'], ...[-8, 16, -20, 28].flatMap((dy) => [[cx + 5, cy + dy, 'start'], [cx - 5, cy + dy, 'end']])];
    const boxes = spots.map(([x, y, anchor]) => ({ x: anchor === 'end' ? x - w : x, y: y - 11, w, h: 15, spot: [x, y, anchor] }));
    const box = boxes.find((b) => !overlaps(b) && b.x >= 0 && b.x + b.w <= W) ?? boxes[0];
    placed.push(box);
    root.append(label(box.spot[0], box.spot[1], p.part, { 'text-anchor': box.spot[2], class: 'tick need-label' }));
  }
  const most = sorted.at(-1);
  root.setAttribute('aria-label', t('measured_needs_aria', {
    found: rows.filter((p) => p.iou >= TARGET).length, n: rows.length, needed: most.part, needed_pct: pctText(most.changed),
  }));
  return root;
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

// Whether the part the answers need least still has a detector unit decides what the words
// may claim: "nothing pushed a unit to find it" is true only where none did, and never for a
// network that was also taught where the parts are (in units given a part each, or not).
function needsTexts(leastNeeded, taught) {
  if (taught) return taught.units ? texts().measured_needs_assigned : texts().measured_needs_taught;
  return leastNeeded.iou >= TARGET ? texts().measured_needs_found : texts().measured_needs;
}

function words(d, level, rows) {
  const tg = d.targets ?? {};
  const byNeed = [...rows].sort((a, b) => b.changed - a.changed);
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
  }) + (rows.length ? ` ${fill(needsTexts(byNeed.at(-1), current.taught)?.[level] ?? '', {
    needed: byNeed[0].part, needed_pct: pctText(byNeed[0].changed),
    ignored: byNeed.at(-1).part, ignored_pct: pctText(byNeed.at(-1).changed),
    rho: rankCorrelation(rows.map((p) => p.changed), rows.map((p) => p.iou)).toFixed(2),
    layer: current.taught?.layer ?? '',
  })}` : '');
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
  const rows = needed(d, current.reliance);
  const needsFigure = rows.length ? el('div', { class: 'chart-box' }, [
    el('h3', { class: 'chart-title', text: t('measured_needs') }), needsChart(rows),
    legend([['dot found', t('measured_needs_found')], ['dot missing', t('measured_needs_missing')], ['line target', t('measured_target')]]),
  ]) : null;
  charts.replaceChildren(unitsFigure, iouFigure, ...(needsFigure ? [needsFigure] : []));
  $('#measured-text').textContent = words(d, level, rows);
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
  current = { dissection: d, level, reliance: model.metrics?.reliance ?? null, taught: model.taught_parts ?? null };
  draw(known ? previous : ':parts');
}
