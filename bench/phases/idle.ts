import { sleep } from '../common/clock';
import type { Target } from '../common/protocol';
import type { Summary } from '../common/summary';
import { openFilesFor, type BenchContext } from '../lib/context';
import { collectGarbage } from '../lib/gc';
import { Loader } from '../lib/loader-client';
import { cpuMs, rssBytes } from '../lib/proc-stats';
import type { ServerHandle } from '../lib/servers';

export interface IdleStep {
  connections: number;
  open: number;
  failed: number;
  rssBytes: number;
  /** (RSS − base RSS) / open connections. */
  rssPerConnectionBytes: number;
  /** RSS added per connection added since the previous step (or the base): independent of how much free heap the base happened to hold. */
  rssPerAddedConnectionBytes: number;
  connectMs: Summary;
  connectsPerSec: number;
  /** Server CPU time per connection opened in this step (handshake, auth, bookkeeping). */
  serverCpuUsPerConnect: number;
  loaderCpuPercent: number;
  firstError?: string;
}

export interface IdleResult {
  baseRssBytes: number;
  steps: IdleStep[];
  /** After the last step and `holdMs`: connections still open, and drops since connecting. */
  held: { connections: number; open: number; dropped: number; failed: number };
  /** Server CPU while it holds them and nothing happens (timers, pings, GC), per second of the hold. */
  holdCpuMsPerSec: number;
  skippedSteps: number[];
}

const WARM_UP_CONNECTIONS = 200;
/** For the pages a collection frees to go back to the system. */
const GC_SETTLE_MS = 500;

/** Steps the open-file limit allows; the others are reported as skipped. */
export function idleSteps(ctx: BenchContext): { steps: number[]; skipped: number[] } {
  const steps = ctx.config.idleSteps.filter((n) => n <= ctx.host.maxConnections);
  const skipped = ctx.config.idleSteps.filter((n) => n > ctx.host.maxConnections);
  return { steps, skipped };
}

/** Connects and drops a few connections, so that lazily built code paths are in the base RSS. */
async function warmUp(
  ctx: BenchContext,
  server: ServerHandle,
  target: Target,
  credentials: string[],
): Promise<void> {
  const loader = Loader.start('socketio', ctx.config.loadCpu);
  try {
    await loader.request(
      connectCommand(ctx, server, target, credentials, WARM_UP_CONNECTIONS),
      'connected',
      60_000,
    );
  } finally {
    await loader.close();
  }
}

/** The server's RSS once it has settled, right after a full garbage collection. */
async function settledRss(ctx: BenchContext, server: ServerHandle): Promise<number> {
  await sleep(ctx.config.settleMs);
  const [main] = server.processes;
  await collectGarbage(main);
  await sleep(GC_SETTLE_MS);
  return rssBytes(main.pid);
}

function connectCommand(
  ctx: BenchContext,
  server: ServerHandle,
  target: Target,
  credentials: string[],
  total: number,
) {
  return {
    type: 'connect' as const,
    target,
    url: server.urls[0],
    credentials,
    total,
    concurrency: ctx.config.connectConcurrency,
    timeoutMs: 30_000,
  };
}

interface StepInput {
  ctx: BenchContext;
  server: ServerHandle;
  loader: Loader;
  target: Target;
  credentials: string[];
  baseRssBytes: number;
}

/** Opens connections up to `connections`, lets the server settle, and reads its RSS. */
async function measureStep(
  input: StepInput,
  connections: number,
  previous: { open: number; rssBytes: number },
): Promise<IdleStep> {
  const { ctx, server, loader, target, credentials, baseRssBytes } = input;
  const opened = previous.open;
  const pid = server.processes[0].pid;
  const command = connectCommand(ctx, server, target, credentials, connections);
  const [cpu0, load0, t0] = [cpuMs(pid), loader.cpuMs(), Date.now()];
  const { result } = await loader.request(command, 'connected', 60_000 + connections * 20);
  const [cpu1, load1, t1] = [cpuMs(pid), loader.cpuMs(), Date.now()];
  const rss = await settledRss(ctx, server);
  const added = Math.max(1, result.open - opened);
  return {
    connections,
    open: result.open,
    failed: result.failed,
    rssBytes: rss,
    rssPerConnectionBytes: (rss - baseRssBytes) / Math.max(1, result.open),
    rssPerAddedConnectionBytes: (rss - previous.rssBytes) / added,
    connectMs: result.connectMs,
    connectsPerSec: added / (Math.max(1, t1 - t0) / 1000),
    serverCpuUsPerConnect: ((cpu1 - cpu0) * 1000) / added,
    loaderCpuPercent: ((load1 - load0) / Math.max(1, t1 - t0)) * 100,
    firstError: result.firstError,
  };
}

/** Server RSS per idle connection at each step, from a warmed-up base. */
export async function measureIdle(
  ctx: BenchContext,
  server: ServerHandle,
  target: Target,
  credentials: string[],
): Promise<IdleResult> {
  const { steps, skipped } = idleSteps(ctx);
  await warmUp(ctx, server, target, credentials);
  const baseRssBytes = await settledRss(ctx, server);
  const openFiles = openFilesFor(ctx.host, Math.max(0, ...steps));
  const loader = Loader.start('socketio', ctx.config.loadCpu, openFiles);
  try {
    const input = { ctx, server, loader, target, credentials, baseRssBytes };
    const measured: IdleStep[] = [];
    for (const connections of steps)
      measured.push(
        await measureStep(
          input,
          connections,
          measured.at(-1) ?? { open: 0, rssBytes: baseRssBytes },
        ),
      );
    const pid = server.processes[0].pid;
    const [cpu0, t0] = [cpuMs(pid), Date.now()];
    await sleep(ctx.config.holdMs);
    const holdCpuMsPerSec = ((cpuMs(pid) - cpu0) * 1000) / Math.max(1, Date.now() - t0);
    const check = await loader.request({ type: 'check' }, 'checked', 30_000);
    const failed = measured.reduce((total, step) => total + step.failed, 0);
    const held = {
      connections: steps.at(-1) ?? 0,
      open: check.open,
      dropped: check.dropped,
      failed,
    };
    return { baseRssBytes, steps: measured, held, holdCpuMsPerSec, skippedSteps: skipped };
  } finally {
    await loader.close();
  }
}
