/** Node fires a timer with a longer delay after 1 ms. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Calls `expire` when a token expiring at `tokenExpiresAt` does (on the next
 * turn if it has), without keeping the process alive; returns what cancels
 * it. Live connections authenticate once, so every transport ends them with
 * their token. A token valid for longer than Node can wait at once (about
 * 24.8 days) is waited for in turns.
 */
export function whenTokenExpires(tokenExpiresAt: number, expire: () => void): () => void {
  let timer: NodeJS.Timeout;
  const waitOrExpire = () => {
    const remaining = tokenExpiresAt - Date.now();
    if (remaining <= 0) return expire();
    timer = setTimeout(waitOrExpire, Math.min(remaining, MAX_TIMER_MS)).unref();
  };
  timer = setTimeout(
    waitOrExpire,
    Math.min(Math.max(tokenExpiresAt - Date.now(), 0), MAX_TIMER_MS),
  ).unref();
  return () => clearTimeout(timer);
}
