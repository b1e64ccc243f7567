import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { AppException } from '@app/common/errors/app.exception';
import { HTTP_STATUS_BY_CODE } from '@app/common/errors/error-code';

/**
 * Answers an upgrade that must not become a WebSocket at all (a foreign
 * Origin, another path) with the contract's error, as REST would, then
 * closes the connection for good: an upgraded socket is out of the HTTP
 * server's timeouts, so one a client kept half open would hold its
 * descriptor, and the server's close, for good.
 */
export function rejectUpgrade(
  socket: Duplex,
  error: AppException,
  headers: Record<string, string> = {},
): void {
  const status = HTTP_STATUS_BY_CODE[error.code];
  const body = JSON.stringify(error.toBody());
  const extra = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`);
  // A client resetting meanwhile must not be an unhandled error, whoever else listens.
  socket.on('error', () => socket.destroy());
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\n${extra.join('')}` +
      `Content-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

/** Answers a plain HTTP request with the contract's error, as REST would. */
export function refuseRequest(
  response: ServerResponse<IncomingMessage>,
  error: AppException,
): void {
  const body = JSON.stringify(error.toBody());
  response.writeHead(HTTP_STATUS_BY_CODE[error.code], {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
  });
  response.end(body);
}
