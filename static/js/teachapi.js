// The teaching API (v1): sessions, examples, training as server-sent events, predictions, heads.
import { ApiError } from './api.js';
import { events } from './sse.js';

const root = '/api/v1/teach';
const path = (session, tail = '') => `${root}/${encodeURIComponent(session)}${tail}`;

async function problem(response) {
  const retry = Number.parseFloat(response.headers.get('Retry-After'));
  try {
    const body = await response.json();
    return new ApiError(body.detail || body.title, response.status, Number.isFinite(retry) ? retry : null);
  } catch {
    return new ApiError(response.statusText || `HTTP ${response.status}`, response.status, null);
  }
}

async function send(url, init = {}) {
  const response = await fetch(url, init);
  if (!response.ok) throw await problem(response);
  return response;
}

const picture = (blob) => {
  const body = new FormData();
  body.append('image', blob, blob.name || 'picture');
  return body;
};

export async function openSession(model, classes) {
  const body = JSON.stringify({ model, classes });
  return (await send(root, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body })).json();
}

export async function addExample(session, label, blob) {
  const url = `${path(session, '/examples')}?label=${encodeURIComponent(label)}`;
  return (await send(url, { method: 'POST', body: picture(blob) })).json();
}

// `cam`: also where the evidence for the winning class lies (Grad-CAM of the taught head).
export async function predict(session, blob, { signal, cam = true } = {}) {
  const url = path(session, `/predict${cam ? '?cam=true' : ''}`);
  return (await send(url, { method: 'POST', body: picture(blob), signal })).json();
}

export const dropSession = (session) => fetch(path(session), { method: 'DELETE' }).catch(() => null);

export async function exportHead(session) {
  return (await send(path(session, '/export'))).blob();
}

export async function importHead(file) {
  const headers = { 'Content-Type': 'application/octet-stream' };
  return (await send(`${root}/import`, { method: 'POST', headers, body: file })).json();
}

// Training: each `progress` event goes to `onProgress` as it arrives; resolves with the result.
export async function train(session, onProgress) {
  const response = await send(path(session, '/train'), { method: 'POST', headers: { Accept: 'text/event-stream' } });
  for await (const { kind, data } of events(response)) {
    if (kind === 'progress') onProgress(data);
    else if (kind === 'result') return data;
    else if (kind === 'error') throw new ApiError(data.detail, data.status, null);
  }
  throw new ApiError('The training stream ended without a result.', 500, null);
}
