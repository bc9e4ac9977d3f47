// @ts-check
// Go templates for --format: the handful of forms used here ({{.A.B}}, {{json .X}},
// {{index .X "k"}}, {{.Label "k"}}).
import { die } from './cli.mjs';

/** @param {unknown} value @returns {string} */
function goString(value) {
  if (value === undefined || value === null) return '<no value>';
  if (Array.isArray(value)) return `[${value.map(goString).join(' ')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value).sort(([a], [b]) => a.localeCompare(b));
    return `map[${entries.map(([k, v]) => `${k}:${goString(v)}`).join(' ')}]`;
  }
  return String(value);
}

/**
 * @param {string} template
 * @param {Record<string, unknown>} root
 * @param {Record<string, string>} labels for `.Label "K"` (ps)
 */
export function render(template, root, labels) {
  /** @param {string} ref */
  const resolve = (ref) => {
    if (ref === '.') return root;
    /** @type {unknown} */
    let value = root;
    for (const key of ref.slice(1).split('.')) {
      value = value && typeof value === 'object' ? /** @type {any} */ (value)[key] : undefined;
    }
    return value;
  };
  const text = template.replace(/\{\{\s*(.*?)\s*\}\}/g, (_, /** @type {string} */ expr) => {
    let m;
    if ((m = /^index\s+(\.\S*)\s+"([^"]*)"$/.exec(expr))) {
      const map = resolve(m[1] ?? '.');
      const value =
        map && typeof map === 'object' ? /** @type {any} */ (map)[m[2] ?? ''] : undefined;
      return value === undefined ? '' : goString(value);
    }
    if ((m = /^json\s+(\.\S*)$/.exec(expr))) return JSON.stringify(resolve(m[1] ?? '.') ?? null);
    if ((m = /^\.Label\s+"([^"]*)"$/.exec(expr))) return labels[m[1] ?? ''] ?? '';
    if (/^\.$|^(\.[A-Za-z_]\w*)+$/.test(expr)) return goString(resolve(expr));
    return die(1, `template: unsupported by the docker stand-in: {{${expr}}}`);
  });
  return text.replace(/\\n/g, '\n').replace(/\\t/g, '\t');
}
