/**
 * Settles as `work` does, or rejects with `timedOut()` once `timeoutMs` has
 * passed first, or as soon as `signal` aborts: its timer then goes too, so
 * that nothing of a closed client keeps a process alive.
 */
export function withTimeout<T>(
  work: Promise<T>,
  timeoutMs: number,
  timedOut: () => Error = () => new Error(`No answer within ${timeoutMs} ms`),
  signal?: AbortSignal,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let aborted: (() => void) | undefined;
  const timeout = new Promise<never>((_, reject) => {
    aborted = () => reject(new Error('Aborted'));
    if (signal?.aborted) return aborted();
    timer = setTimeout(() => reject(timedOut()), timeoutMs);
    signal?.addEventListener('abort', aborted, { once: true });
  });
  return Promise.race([work, timeout]).finally(() => {
    clearTimeout(timer);
    if (aborted) signal?.removeEventListener('abort', aborted);
  });
}
