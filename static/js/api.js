// The JSON API (v1). Errors arrive as RFC 9457 problem details; we surface `detail`.
export class ApiError extends Error {
  constructor(detail, status, retryAfter = null) {
    super(detail);
    this.status = status;
    this.retryAfter = retryAfter; // seconds, from Retry-After on 429 and 503
  }
}

async function problem(response) {
  const retry = Number.parseFloat(response.headers.get('Retry-After'));
  const retryAfter = Number.isFinite(retry) ? retry : null;
  try {
    const body = await response.json();
    return new ApiError(body.detail || body.title || response.statusText, response.status, retryAfter);
  } catch {
    return new ApiError(response.statusText || `HTTP ${response.status}`, response.status, retryAfter);
  }
}

const base = (modelId) => `/api/v1/models/${encodeURIComponent(modelId)}`;
const query = (params) => {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v != null && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
};

async function call(url, { signal, blob, as = 'json' } = {}) {
  let init = { signal };
  if (blob) {
    const body = new FormData();
    body.append('image', blob, blob.name || 'picture');
    init = { method: 'POST', body, signal };
  }
  const response = await fetch(url, init);
  if (!response.ok) throw await problem(response);
  return as === 'blob' ? response.blob() : response.json();
}

export const listModels = () => call('/api/v1/models');

export const getModel = (modelId) => call(base(modelId));

// Without `layers`: the model's default view (a wide layer there carries its most active maps).
export const analyze = (modelId, blob, { signal, topK = 5, checkpoint, layers } = {}) =>
  call(`${base(modelId)}/activations${query({ top_k: topK, checkpoint, layers })}`, { signal, blob });

// Explanations: first-layer filters, Grad-CAM, guided backprop, dissected units.
export const filters = (modelId, layer, { checkpoint, signal } = {}) =>
  call(`${base(modelId)}/filters${query({ layer, checkpoint, scale: 4 })}`, { signal });

export const gradcam = (modelId, blob, { classIndex, layer, signal } = {}) =>
  call(`${base(modelId)}/gradcam${query({ class_index: classIndex, layer })}`, { signal, blob });

const unitPath = (modelId, layer, c) => `${base(modelId)}/units/${encodeURIComponent(layer)}/${c}`;

export const backprop = (modelId, layer, c, blob, { signal } = {}) =>
  call(`${unitPath(modelId, layer, c)}/backprop`, { signal, blob, as: 'blob' });

export const unit = (modelId, layer, c, { signal } = {}) => call(unitPath(modelId, layer, c), { signal });

export const units = (modelId, layer, { signal } = {}) => call(`${base(modelId)}/units${query({ layer })}`, { signal });
