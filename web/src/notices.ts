/** What the page says when the user is no longer in a room; `remover` is unknown after an outage. */
export function removalNotice(roomName: string, remover: string | undefined, self: string): string {
  if (remover === undefined) return `You are no longer a member of # ${roomName}.`;
  if (remover === self) return `You left # ${roomName}.`;
  return `${remover} removed you from # ${roomName}.`;
}

export function invitationNotice(roomName: string, inviter: string): string {
  return `${inviter} added you to # ${roomName}.`;
}
