import { ErrorCode, type ErrorBody } from '../../client/src';

/** What the page says when the user is no longer in a room; `remover` is unknown after an outage. */
export function removalNotice(roomName: string, remover: string | undefined, self: string): string {
  if (remover === undefined) return `You are no longer a member of # ${roomName}.`;
  if (remover === self) return `You left # ${roomName}.`;
  return `${remover} removed you from # ${roomName}.`;
}

export function invitationNotice(roomName: string, inviter: string): string {
  return `${inviter} added you to # ${roomName}.`;
}

/** A mention elsewhere than the conversation open; the room may not be listed (yet). */
export function mentionNotice(author: string, roomName: string | undefined): string {
  return roomName === undefined
    ? `${author} mentioned you in a room.`
    : `${author} mentioned you in # ${roomName}.`;
}

/**
 * A catch-up read of missed messages failed (the SDK goes on retrying it),
 * whatever refused it: the service, a proxy, a login wall. The
 * conversation may lack messages for a while, and the user should know.
 * A session that ended is told otherwise (the page signs out).
 */
export function catchUpNotice(error: ErrorBody, roomName: string | undefined): string | undefined {
  if (error.code === ErrorCode.Unauthorized) return undefined;
  const where = roomName === undefined ? '' : ` of # ${roomName}`;
  return `Could not fetch missed messages${where} (${error.message}): retrying, some may show late.`;
}

export function addedNotice(username: string, roomName: string): string {
  return `Added ${username} to # ${roomName}.`;
}
