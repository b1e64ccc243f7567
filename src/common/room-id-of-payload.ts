import { UUID_PATTERN } from './ids/uuid-v7';

/** The room id a live event names (a bare id, or `{ roomId }`), when it is one. */
export function roomIdOfPayload(payload: unknown): string | undefined {
  const roomId =
    typeof payload === 'string' ? payload : (payload as { roomId?: unknown } | null)?.roomId;
  return typeof roomId === 'string' && UUID_PATTERN.test(roomId) ? roomId : undefined;
}
