// A model listed before its first use (`loaded: false`) lacks its layers, default view and
// filters layer: asking for the model once builds it on the server, and its listing is filled
// in place, so every module that reads it sees them.
import { getModel } from './api.js';

const pending = new Map(); // model id -> the one request for its details

export function built(model) {
  if (!model?.available || model.loaded !== false) return Promise.resolve(model);
  if (!pending.has(model.id)) {
    pending.set(model.id, getModel(model.id).then((body) => Object.assign(model, body), () => {
      pending.delete(model.id); // the server was busy: the next use asks again
      return model;
    }));
  }
  return pending.get(model.id);
}
