// Shareable state in the query string: model, level, layer, channel, norm, cmap, the training
// checkpoint, the named-units filter and the model compared with (never the image).
const KEYS = ['model', 'level', 'layer', 'channel', 'norm', 'cmap', 'checkpoint', 'named', 'compare'];
export const LEVELS = ['child', 'teen', 'adult', 'student', 'expert'];
const CHOICES = { level: LEVELS, norm: ['channel', 'layer'], cmap: ['viridis', 'grey'], named: ['1'] };

export function readState(search = location.search) {
  const params = new URLSearchParams(search);
  const state = {};
  for (const key of KEYS) {
    const value = params.get(key);
    if (value == null || value === '') continue;
    if (CHOICES[key] && !CHOICES[key].includes(value)) continue;
    if (key === 'channel') {
      const c = Number.parseInt(value, 10);
      if (Number.isInteger(c) && c >= 0) state.channel = c;
    } else state[key] = value.slice(0, 80);
  }
  return state;
}

export function writeState(state) {
  const params = new URLSearchParams();
  for (const key of KEYS) if (state[key] != null && state[key] !== '') params.set(key, state[key]);
  const query = params.toString();
  history.replaceState(null, '', `${location.pathname}${query ? `?${query}` : ''}${location.hash}`);
}
