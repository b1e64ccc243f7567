import type { IncomingMessage } from 'node:http';

/**
 * Browsers send `Origin` with every WebSocket upgrade and cross-origin request.
 * Allowed: no Origin (not a browser), the service's own origin, or the allowlist.
 */
export function isOriginAllowed(request: IncomingMessage, allowlist: readonly string[]): boolean {
  const origin = request.headers.origin;
  if (!origin) return true;
  if (allowlist.includes('*') || allowlist.includes(origin)) return true;
  try {
    return new URL(origin).host === request.headers.host;
  } catch {
    return false;
  }
}
