const ACCEPTED_FORMS =
  'CORS_ORIGINS must be * or a comma-separated list of origins, each scheme://host[:port] ' +
  'as a browser sends it (https://chat.example.com)';

/**
 * Reads CORS_ORIGINS: browsers send `Origin` exactly as `URL.origin` writes
 * it, and the allowlist is compared as written, so an entry in any other
 * form (a path, a trailing slash, upper case, no scheme) would match no
 * browser at all. Throws a message fit for the operator.
 */
export function parseCorsOrigins(value: string): string[] {
  const entries = value
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry.length > 0);
  for (const entry of entries) {
    if (entry !== '*' && originOf(entry) !== entry) throw new Error(problemWith(entry));
  }
  return entries;
}

/**
 * The origin a browser would send for the entry. Apps on schemes that URL
 * gives no origin (capacitor://, chrome-extension://, tauri://) send
 * scheme://host as it is.
 */
function originOf(entry: string): string | undefined {
  try {
    const url = new URL(entry);
    if (url.origin !== 'null') return url.origin;
    return url.host ? `${url.protocol}//${url.host}` : undefined;
  } catch {
    return undefined;
  }
}

function problemWith(entry: string): string {
  const origin = originOf(entry);
  const hint = origin ? `: did you mean ${origin}?` : '';
  return `${ACCEPTED_FORMS}; "${entry}" is not one${hint}`;
}
