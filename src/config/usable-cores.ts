import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

export type ReadFile = (path: string) => string;

const readText: ReadFile = (path) => readFileSync(path, 'utf8');

/** A quota over a period in cores; undefined for no limit or anything unreadable. */
function cores(quota: string | undefined, period: string | undefined): number | undefined {
  const value = Number(quota) / Number(period);
  return Number.isFinite(value) && value > 0 ? value : undefined;
}

/** A container's CPU quota in cores: cgroup v2's `cpu.max`, else v1's CFS pair. */
export function quotaCores(read: ReadFile = readText): number | undefined {
  try {
    const [quota, period] = read('/sys/fs/cgroup/cpu.max').trim().split(/\s+/);
    return quota === 'max' ? undefined : cores(quota, period);
  } catch {
    try {
      const quota = read('/sys/fs/cgroup/cpu/cpu.cfs_quota_us').trim();
      return cores(quota, read('/sys/fs/cgroup/cpu/cpu.cfs_period_us').trim());
    } catch {
      return undefined;
    }
  }
}

/**
 * The cores this process can keep busy: those it may run on, and no more
 * than a container's CPU quota allows, whole cores only (Node 20 reads only
 * the first). Threads sized by the cores alone would, under a quota of one
 * core on a large host, take turns with the event loop for that one core.
 */
export function usableCores(read: ReadFile = readText): number {
  const quota = quotaCores(read);
  const onCpus = availableParallelism();
  return quota === undefined ? onCpus : Math.max(1, Math.min(onCpus, Math.floor(quota)));
}
