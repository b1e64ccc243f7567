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
  /** RSS as read once the server has settled: with whatever garbage its last collection left. */
  rssBytes: number;
  /** (RSS − base RSS) / open connections, both as read. */
  rssPerConnectionBytes: number;
  /** RSS right after a full garbage collection: what the connections keep alive. */
  retainedRssBytes: number;
  /** (retained RSS − retained base) / open connections. */
  retainedPerConnectionBytes: number;
  /** Retained RSS added per connection added since the previous step (or the base). */
  retainedPerAddedConnectionBytes: number;
  connectMs: Summary;
  connectsPerSec: number;
  /** Server CPU time per connection opened in this step (handshake, auth, bookkeeping). */
  serverCpuUsPerConnect: number;
  loaderCpuPercent: number;
  firstError?: string;
}

export interface IdleResult {
  baseRssBytes: number;
  baseRetainedRssBytes: number;
  steps: IdleStep[];
  /** After the last step and `holdMs`: connections still open, and drops since connecting. */
  held: { connections: number; open: number; dropped: number; failed: number };
  /** Server CPU while it holds them and nothing happens (timers, pings, GC), per second of the hold. */
  holdCpuMsPerSec: number;
  skippedSteps: number[];
}

const WARM_UP_CONNECTIONS = 200;

/**
 * Users the idle phase needs, one per connection: the warm-up's first, so
 * that what a server keeps of them is in the base and not in a step, and a
 * tenth more for connects that fail (each attempt takes a user of its own).
 */
export function idleUsersNeeded(ctx: BenchContext): number {
  const connections = Math.max(0, ...idleSteps(ctx).steps);
  return WARM_UP_CONNECTIONS + connections + Math.ceil(connections / 10);
}
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

/** The server's RSS once it has settled, as it is. */
async function settledRss(ctx: BenchContext, server: ServerHandle): Promise<number> {
  await sleep(ctx.config.settleMs);
  return rssBytes(server.processes[0].pid);
}

/**
 * The server's RSS right after a full garbage collection. The collection
 * changes what the server does next (it collects more often for a while):
 * the hold is timed before the last one, but each step's connects follow the
 * collection of the step before, on both servers alike.
 */
async function retainedRss(server: ServerHandle): Promise<number> {
  const [main] = server.processes;
  await collectGarbage(main);
  await sleep(GC_SETTLE_MS);
  return rssBytes(main.pid);
}

/** A step as read before its collection. */
type SettledStep = Omit<
  IdleStep,
  'retainedRssBytes' | 'retainedPerConnectionBytes' | 'retainedPerAddedConnectionBytes'
>;

/** Each step with its retained RSS (`retained[i]` for `settled[i]`), per connection and per connection added. */
function withRetained(settled: SettledStep[], retained: number[], base: number): IdleStep[] {
  return settled.map((step, i) => {
    const [openBefore, retainedBefore] =
      i === 0 ? [0, base] : [settled[i - 1].open, retained[i - 1]];
    return {
      ...step,
      retainedRssBytes: retained[i],
      retainedPerConnectionBytes: (retained[i] - base) / Math.max(1, step.open),
      retainedPerAddedConnectionBytes:
        (retained[i] - retainedBefore) / Math.max(1, step.open - openBefore),
    };
  });
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

/** Opens connections up to `connections`, lets the server settle, and reads its RSS (retained RSS comes later). */
async function measureStep(
  input: StepInput,
  connections: number,
  previous: { open: number },
): Promise<SettledStep> {
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
  await warmUp(ctx, server, target, credentials.slice(0, WARM_UP_CONNECTIONS));
  const stepUsers = credentials.slice(WARM_UP_CONNECTIONS);
  const baseRssBytes = await settledRss(ctx, server);
  const baseRetainedRssBytes = await retainedRss(server);
  const openFiles = openFilesFor(ctx.host, Math.max(0, ...steps));
  const loader = Loader.start('socketio', ctx.config.loadCpu, openFiles);
  try {
    const input = { ctx, server, loader, target, credentials: stepUsers, baseRssBytes };
    const settled: SettledStep[] = [];
    const retained: number[] = [];
    for (const connections of steps) {
      if (settled.length > 0) retained.push(await retainedRss(server));
      settled.push(await measureStep(input, connections, settled.at(-1) ?? { open: 0 }));
    }
    // The hold is timed before the last step's collection, which would disturb it.
    const pid = server.processes[0].pid;
    const [cpu0, t0] = [cpuMs(pid), Date.now()];
    await sleep(ctx.config.holdMs);
    const holdCpuMsPerSec = ((cpuMs(pid) - cpu0) * 1000) / Math.max(1, Date.now() - t0);
    if (settled.length > 0) retained.push(await retainedRss(server));
    const measured = withRetained(settled, retained, baseRetainedRssBytes);
    const check = await loader.request({ type: 'check' }, 'checked', 30_000);
    const failed = measured.reduce((total, step) => total + step.failed, 0);
    const held = {
      connections: steps.at(-1) ?? 0,
      open: check.open,
      dropped: check.dropped,
      failed,
    };
    return {
      baseRssBytes,
      baseRetainedRssBytes,
      steps: measured,
      held,
      holdCpuMsPerSec,
      skippedSteps: skipped,
    };
  } finally {
    await loader.close();
  }
}
