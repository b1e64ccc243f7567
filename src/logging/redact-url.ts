/** `password`: a login form sent before the page's script took it over would put one there. */
const SECRET_QUERY_KEYS = new Set(['token', 'access_token', 'password']);

/** The URL with the values of secret query parameters replaced, for logs. */
export function redactUrl(url: string | undefined): string {
  if (!url) return '';
  const queryStart = url.indexOf('?');
  if (queryStart === -1) return url;
  const params = new URLSearchParams(url.slice(queryStart + 1));
  for (const key of [...params.keys()]) {
    if (SECRET_QUERY_KEYS.has(key.toLowerCase())) params.set(key, '[redacted]');
  }
  return `${url.slice(0, queryStart)}?${params.toString()}`;
}
