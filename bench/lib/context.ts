import { cpus } from 'node:os';
import type { BenchConfig } from './config';
import { postgresReachable, redisReachable } from './databases';
import { checkPinning, pinningEnabled, profiling } from './processes';
import { clockTicks, openFileLimits } from './proc-stats';

/** What the machine allows, found once at the start. */
export interface HostInfo {
  cpus: number;
  node: string;
  taskset: boolean;
  /** Why nothing is pinned although `taskset` exists: a configured CPU cannot be used. */
  unpinned?: string;
  /** Servers write CPU profiles (`BENCH_CPU_PROF_DIR`). */
  profiling: boolean;
  clockTicks: number;
  openFiles: { soft: number; hard: number };
  /** The most connections one process may hold (open-file hard limit minus headroom). */
  maxConnections: number;
  postgres?: string;
  redis?: string;
}

export interface BenchContext {
  config: BenchConfig;
  host: HostInfo;
  notes: string[];
}

/** Descriptors a process needs besides its connections. */
export const FD_HEADROOM = 1024;

export async function probeHost(config: BenchConfig): Promise<HostInfo> {
  const openFiles = openFileLimits();
  const needsPostgres = config.databases.has('postgres') || config.phases.has('cluster');
  const unpinned = checkPinning([config.serverCpu, config.loadCpu]);
  return {
    cpus: cpus().length,
    node: process.version,
    taskset: pinningEnabled(),
    unpinned,
    profiling: profiling(),
    clockTicks: clockTicks(),
    openFiles,
    maxConnections: Math.min(openFiles.hard, 1 << 20) - FD_HEADROOM,
    postgres: needsPostgres ? await postgresReachable(config.databaseUrl) : 'not needed',
    redis: config.phases.has('cluster') ? await redisReachable(config.redisUrl) : 'not needed',
  };
}

/** The open-file limit to give children that hold `connections`, if the inherited soft limit is too low. */
export function openFilesFor(host: HostInfo, connections: number): number | undefined {
  const needed = connections + FD_HEADROOM;
  return host.openFiles.soft >= needed ? undefined : Math.min(needed, host.openFiles.hard);
}
