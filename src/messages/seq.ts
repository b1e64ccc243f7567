/**
 * Where a resume (`since`, Last-Event-ID) starts: where the client left off,
 * but never past the room's last seq (a restored database, another room's
 * seq), or every new message would look like one it already has.
 */
export function resumePoint(since: number, roomLastSeq: number): number {
  return Math.min(since, roomLastSeq);
}
