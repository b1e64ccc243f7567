/** What a load generator puts into every message, so that receivers can time and count it. */
export interface Stamp {
  /** The sending connection. */
  sender: string;
  /** That sender's counter, from 1. */
  n: number;
  /** Send time, `clock.now()`. */
  sentAt: number;
}

/** `sender|n|sentAt|padding`, padded to `bytes` characters. */
export function stampText(stamp: Stamp, bytes: number): string {
  const head = `${stamp.sender}|${stamp.n}|${stamp.sentAt.toFixed(3)}|`;
  return head + 'x'.repeat(Math.max(1, bytes - head.length));
}

export function readStamp(text: string): Stamp | undefined {
  const [sender, n, sentAt] = text.split('|', 3);
  const stamp = { sender, n: Number(n), sentAt: Number(sentAt) };
  return sender && Number.isFinite(stamp.n) && Number.isFinite(stamp.sentAt) ? stamp : undefined;
}
