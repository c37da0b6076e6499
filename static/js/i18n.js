// All words live in /static/i18n/<lang>.json; this module loads it and fills {placeholders}.
let data = { ui: {}, levels: {}, stages: {}, detail: {}, journey: {}, model_notes: {} };

export async function loadTexts(lang = document.documentElement.lang || 'en') {
  const response = await fetch(`/static/i18n/${lang}.json`);
  if (response.ok) data = await response.json();
  return data;
}

export function fill(template, vars = {}) {
  return String(template ?? '').replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
}

export const t = (key, vars) => fill(data.ui[key] ?? key, vars);
export const texts = () => data;
