import type { IncomingMessage } from 'node:http';
import { requestUrl } from '@app/common/request-url';

const BEARER_PATTERN = /^Bearer\s+(\S+)$/i;

export function bearerToken(request: Pick<IncomingMessage, 'headers'>): string | undefined {
  const header = request.headers.authorization;
  return header ? BEARER_PATTERN.exec(header)?.[1] : undefined;
}

/** `?token=`, accepted only where browsers cannot set headers (WebSocket, EventSource). */
export function queryToken(url: string | undefined): string | undefined {
  if (!url) return undefined;
  return requestUrl(url)?.searchParams.get('token') || undefined;
}
