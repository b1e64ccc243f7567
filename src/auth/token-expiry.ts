/** Node fires a timer with a longer delay after 1 ms. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Calls `expire` when a token expiring at `tokenExpiresAt` does (at once if it
 * has), without keeping the process alive. Live connections authenticate
 * once, so every transport ends them with their token.
 */
export function whenTokenExpires(tokenExpiresAt: number, expire: () => void): NodeJS.Timeout {
  const remaining = Math.min(Math.max(tokenExpiresAt - Date.now(), 0), MAX_TIMER_MS);
  return setTimeout(expire, remaining).unref();
}
