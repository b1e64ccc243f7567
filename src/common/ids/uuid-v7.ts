import { randomFillSync } from 'node:crypto';

const ID_BYTES = 16;
/** Entropy for this many ids is drawn at once: one system call instead of one per id. */
const POOLED_IDS = 256;
const pool = Buffer.allocUnsafe(ID_BYTES * POOLED_IDS);
let poolOffset = pool.length;

/** The next 16 random bytes of the pool, refilled when spent; each is handed out once. */
function randomId(): Buffer {
  if (poolOffset === pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const bytes = pool.subarray(poolOffset, poolOffset + ID_BYTES);
  poolOffset += ID_BYTES;
  return bytes;
}

/**
 * A time-ordered UUID (RFC 9562 version 7). Ids sort by creation time as
 * strings and as PostgreSQL `uuid`, which keyset pagination relies on.
 */
export function uuidv7(now = Date.now()): string {
  const bytes = randomId();
  bytes.writeUIntBE(now, 0, 6);
  bytes[6] = (bytes[6] & 0x0f) | 0x70;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
