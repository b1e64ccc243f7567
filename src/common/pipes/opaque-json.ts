/** Keys the validation pipe strips from every input, at any depth, against prototype pollution. */
const POLLUTING_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * A JSON value passed on as the client sent it, except for the keys the
 * validation pipe strips everywhere (`__proto__`, `constructor`,
 * `prototype`): an opaque field would otherwise be copied like a typed one,
 * which also drops keys named like Object.prototype's (`toString`, …).
 */
export function opaqueJson(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(opaqueJson);
  if (typeof value !== 'object' || value === null) return value;
  const copy: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(value)) {
    if (!POLLUTING_KEYS.has(key)) copy[key] = opaqueJson(field);
  }
  return copy;
}
