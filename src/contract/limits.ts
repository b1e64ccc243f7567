import { USERNAME_LENGTH } from './usernames';

/**
 * The largest Socket.IO packet or `/ws` frame a server takes by default
 * (`WS_MAX_PAYLOAD_BYTES`); a larger one closes the connection (1009)
 * instead of being answered.
 */
export const DEFAULT_MAX_PAYLOAD_BYTES = 64 * 1024;

/** The largest seq a client may name: seqs are 32-bit integers in the database. */
export const MAX_SEQ = 2 ** 31 - 1;

/**
 * A join's answer (members and missed messages, as JSON) may take this share
 * of `SLOW_CONSUMER_LIMIT_BYTES`: it waits in the connection's outgoing data
 * while the client reads it, and a client on a slow link must not be dropped
 * as a slow consumer on every join it comes back with.
 */
export const JOIN_ANSWER_SHARE_OF_SLOW_CONSUMER_LIMIT = 0.5;

/** The most one `{ id, username }` of a join's `members` takes as JSON, with its comma. */
export const MAX_MEMBER_SUMMARY_JSON_BYTES =
  JSON.stringify({ id: '0'.repeat(36), username: 'x'.repeat(USERNAME_LENGTH.max) }).length + 1;
