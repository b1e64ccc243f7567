/**
 * A request target read as a URL, or undefined for one that Node's HTTP
 * parser lets through but URL refuses (`//`, `http://[`, a port above 65535).
 */
export function requestUrl(target: string | undefined): URL | undefined {
  try {
    return new URL(target ?? '/', 'http://localhost');
  } catch {
    return undefined;
  }
}
