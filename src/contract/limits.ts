/**
 * The largest Socket.IO packet or `/ws` frame a server takes by default
 * (`WS_MAX_PAYLOAD_BYTES`); a larger one closes the connection (1009)
 * instead of being answered.
 */
export const DEFAULT_MAX_PAYLOAD_BYTES = 64 * 1024;

/** The largest seq a client may name: seqs are 32-bit integers in the database. */
export const MAX_SEQ = 2 ** 31 - 1;
