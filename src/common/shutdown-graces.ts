/**
 * How long a shutdown waits on clients before it cuts them off; the
 * shutdown timeout must leave room for both.
 */
export const SHUTDOWN_GRACES = {
  /** Live connections told to go have this long to close. */
  connectionCloseMs: 2_000,
  /** An ended event stream's client has this long to take what it left unread. */
  streamEndMs: 5_000,
} as const;
