/**
 * What `work` settles with, or a rejection with `late()` once `ms` have
 * passed. The work itself is not stopped: whoever shares it still gets its
 * answer.
 */
export function withinTime<T>(work: Promise<T>, ms: number, late: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(late()), ms);
    timer.unref();
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

/**
 * `attempt`, started again only once its previous run has settled: callers
 * that come while one runs share it. For probes that a dependency may leave
 * unanswered: each would otherwise hold its own connection or queue slot
 * until then.
 */
export function oneAtATime<T>(attempt: () => Promise<T>): () => Promise<T> {
  let running: Promise<T> | undefined;
  return () =>
    (running ??= attempt().finally(() => {
      running = undefined;
    }));
}
