/** Settles as `work` does, or rejects with `timedOut()` once `timeoutMs` has passed first. */
export function withTimeout<T>(
  work: Promise<T>,
  timeoutMs: number,
  timedOut: () => Error = () => new Error(`No answer within ${timeoutMs} ms`),
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(timedOut()), timeoutMs);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
