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

export async function listModels() {
  const response = await fetch('/api/v1/models');
  if (!response.ok) throw await problem(response);
  return response.json();
}

export async function analyze(modelId, blob, { signal, topK = 5 } = {}) {
  const body = new FormData();
  body.append('image', blob, blob.name || 'picture');
  const url = `/api/v1/models/${encodeURIComponent(modelId)}/activations?top_k=${topK}`;
  const response = await fetch(url, { method: 'POST', body, signal });
  if (!response.ok) throw await problem(response);
  return response.json();
}
