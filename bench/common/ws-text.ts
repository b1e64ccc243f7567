import type { RawData } from 'ws';

/** The text of a `ws` message, whatever buffer shape it arrived in. */
export function textOf(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString();
  if (Array.isArray(data)) return Buffer.concat(data).toString();
  return Buffer.from(data).toString();
}
