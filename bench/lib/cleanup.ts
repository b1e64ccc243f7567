import { killAllNow } from './processes';

const pending = new Set<() => Promise<void>>();
let interruption: Promise<void> | undefined;

/** Longest wait for cleanups after SIGINT / SIGTERM before exiting anyway. */
const INTERRUPT_GRACE_MS = 15_000;

/** Registers `drop` to run at the end, or on a signal; returns a runner that runs it once now. */
export function registerCleanup(drop: () => Promise<void>): () => Promise<void> {
  pending.add(drop);
  return async () => {
    if (!pending.delete(drop)) return;
    await drop();
  };
}

/** Runs every registered cleanup (and waits for those a signal started). */
export async function runCleanups(): Promise<void> {
  const drops = [...pending];
  pending.clear();
  await Promise.allSettled([...drops.map((drop) => drop()), interruption]);
}

export function isInterrupted(): boolean {
  return interruption !== undefined;
}

/**
 * Kills every child process group on exit. On SIGINT / SIGTERM: kills them
 * at once, drops schemas and keys, and makes the run stop starting anything.
 */
export function installExitHandlers(): void {
  process.on('exit', killAllNow);
  for (const signal of ['SIGINT', 'SIGTERM'] as const)
    process.once(signal, () => {
      console.error(`\n${signal}: stopping every process the bench started`);
      killAllNow();
      const drops = [...pending];
      pending.clear();
      interruption = Promise.allSettled(drops.map((drop) => drop())).then(() => undefined);
      setTimeout(() => process.exit(130), INTERRUPT_GRACE_MS);
    });
}
