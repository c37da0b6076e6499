// The JSON API (v1). Errors arrive as RFC 9457 problem details; we surface `detail`.
export class ApiError extends Error {
  constructor(detail, status) {
    super(detail);
    this.status = status;
  }
}

async function problem(response) {
  try {
    const body = await response.json();
    return new ApiError(body.detail || body.title || response.statusText, response.status);
  } catch {
    return new ApiError(response.statusText || `HTTP ${response.status}`, response.status);
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
