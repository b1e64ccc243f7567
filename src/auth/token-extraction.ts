import type { IncomingMessage } from 'node:http';

const BEARER_PATTERN = /^Bearer\s+(\S+)$/i;

export function bearerToken(request: Pick<IncomingMessage, 'headers'>): string | undefined {
  const header = request.headers.authorization;
  return header ? BEARER_PATTERN.exec(header)?.[1] : undefined;
}

/** `?token=`, accepted only where browsers cannot set headers (WebSocket, EventSource). */
export function queryToken(url: string | undefined): string | undefined {
  if (!url) return undefined;
  const token = new URL(url, 'http://localhost').searchParams.get('token');
  return token || undefined;
}
