import { ServerResponse, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { AppException } from '@app/common/errors/app.exception';
import { refuseRequest, rejectUpgrade } from './http-refusals';

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

/**
 * Engine.IO middleware, run for polling requests and upgrades alike: a
 * foreign Origin gets 403 in the contract's shape, as `/ws` and REST answer
 * it, rather than Engine.IO's own (a numeric code, or an HTML 400 on upgrade).
 */
export function refuseForeignOrigins(allowlist: readonly string[]) {
  return (request: IncomingMessage, response: unknown, next: (error?: Error) => void): void => {
    if (isOriginAllowed(request, allowlist)) return next();
    const refusal = AppException.forbidden('Origin not allowed');
    if (response instanceof ServerResponse)
      return refuseRequest(response as ServerResponse<IncomingMessage>, refusal);
    // An upgrade's response is Engine.IO's stand-in, which writes nothing: the socket is answered.
    rejectUpgrade((response as { socket: Duplex }).socket, refusal);
  };
}
