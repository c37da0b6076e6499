// A trimmed layer's other maps: the same picture asked again for that one layer, which the
// server answers with all of its maps. Fetched once per decoded layer, when a person asks,
// and one layer at a time, so a page opening several grids stays within its share of the
// server (LAYERSCOPE_CLIENT_INFLIGHT).
import { analyze } from './api.js';

const pending = new WeakMap(); // LayerMaps -> Promise<LayerMaps>
let last = Promise.resolve(); // the fetch before the next one

export function completeLayer(maps) {
  if (!maps.partial) return Promise.resolve(maps);
  if (!maps.source) return Promise.reject(new Error('no picture to ask about'));
  if (!pending.has(maps)) {
    const { model, blob, checkpoint } = maps.source;
    const job = last
      .then(() => analyze(model, blob, { layers: maps.layer.name, checkpoint, topK: 1 }))
      .then((body) => maps.adopt(body.layers[0]))
      .then(() => maps);
    last = job.catch(() => {});
    job.catch(() => pending.delete(maps)); // a failed fetch may be tried again
    pending.set(maps, job);
  }
  return pending.get(maps);
}
