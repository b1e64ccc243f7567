import { DEFAULT_MAX_PAYLOAD_BYTES } from '../../src/contract/limits';
import { ErrorCode } from './contract';
import { ChatError, clientError } from './errors';

export { DEFAULT_MAX_PAYLOAD_BYTES };

/** Room for what a transport wraps around the JSON: Socket.IO's packet type, ack id and event name. */
const ENVELOPE_BYTES = 64;

/**
 * Refuses, as the server cannot (it closes the connection, 1009, instead of
 * answering), a payload whose JSON is over the server's size limit. A send
 * queued to be retried after every reconnect would otherwise cut the
 * connection each time, for good.
 */
export function payloadTooLarge(payload: unknown, maxPayloadBytes: number): ChatError | undefined {
  const bytes = new TextEncoder().encode(JSON.stringify(payload)).length + ENVELOPE_BYTES;
  if (bytes <= maxPayloadBytes) return undefined;
  const message = `About ${bytes} bytes, over the server's limit of ${maxPayloadBytes}`;
  return new ChatError(clientError(ErrorCode.PayloadTooLarge, message));
}
