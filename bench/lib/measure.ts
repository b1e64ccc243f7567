import type { RoomPlan, RunCommand, RunResult, Target } from '../common/protocol';
import type { Summary } from '../common/summary';
import type { BenchContext } from './context';
import { Loader, type LoaderKind } from './loader-client';
import { startPerfRecord } from './perf-record';
import { watchPostgres, type PostgresCpu } from './postgres-cpu';
import { totalCpuMs } from './proc-stats';
import type { ServerHandle } from './servers';

/** A load run with the server's CPU time over it, and the figures derived from both. */
export interface LoadMeasurement extends RunResult {
  connections: number;
  connectMs: Summary;
  serverCpuMs: number;
  loaderCpuMs: number;
  wallMs: number;
  deliveriesPerSec: number;
  messagesPerSec: number;
  cpuUsPerDelivery: number;
  /** Server CPU time over wall time (send and drain), in percent of one core (summed over nodes). */
  serverCpuPercent: number;
  /** The load generator's CPU time over the sending window only, in percent of one core (see `clientBound`). */
  loaderCpuPercent: number;
  /** The CPU time of the server's PostgreSQL backends over the same window (not in `serverCpuMs`). */
  postgres?: PostgresCpu;
  /** With several repeats: this is the median one, and these are the figures of each, in order. */
  repeats?: number[];
  /** Runs whose loss, duplicates, errors and drops the integrity fields add up (every repeat, and the warm-up before the first run). */
  runsChecked: number;
  /** Every repeat as measured, in the order run (for the JSON results). */
  runs?: LoadMeasurement[];
  /** The unmeasured warm-up before the first run, as the load generator saw it. */
  warmUp?: RunResult;
  /** For the last run of a scenario: what arrived after its last repeat (see `afterLastRun`). */
  afterLast?: RunResult;
}

/** The fields that must stay clean, whichever repeat gives the figures. */
type Integrity = Pick<
  RunResult,
  | 'lost'
  | 'tailLost'
  | 'duplicates'
  | 'unexpected'
  | 'ackErrors'
  | 'skipped'
  | 'disconnects'
  | 'drained'
>;

export interface Scenario {
  /** The phase it belongs to, naming its perf recordings. */
  name: string;
  loader: LoaderKind;
  target: Target;
  rooms: RoomPlan[];
  runs: RunCommand[];
  /** The figure that picks the median of repeated runs: CPU per delivery unless given. */
  figure?: (measurement: LoadMeasurement) => number;
}

const SETUP_TIMEOUT_MS = 180_000;

/** At or above this share of its core while sending, a load generator is what limits a run. */
export const SATURATED_PERCENT = 90;

/** Whether the run's load generator was saturated while sending: its throughput is a lower bound of the server's. */
export function clientBound(m: LoadMeasurement): boolean {
  return m.loaderCpuPercent >= SATURATED_PERCENT;
}

function derive(result: RunResult, serverCpuMs: number, loaderCpuMs: number, wallMs: number) {
  const activeSeconds = Math.max(result.activeMs, 1) / 1000;
  // A refused send is not throughput: an error ack, or an error frame over /ws,
  // where nothing is acknowledged.
  const settled = result.sentUnacked > 0 ? result.sent - result.ackErrors : result.acked;
  return {
    serverCpuMs,
    loaderCpuMs,
    wallMs,
    deliveriesPerSec: result.deliveries / activeSeconds,
    messagesPerSec: settled / activeSeconds,
    // NaN, not 0, for a server that delivered nothing: no target can pass on it.
    cpuUsPerDelivery: result.deliveries > 0 ? (serverCpuMs * 1000) / result.deliveries : NaN,
    serverCpuPercent: (serverCpuMs / wallMs) * 100,
    // Over the sending window: a drain that waits adds idle time and would
    // hide a load generator that was saturated while it sent.
    loaderCpuPercent:
      result.sendWindowMs > 0
        ? (result.sendCpuMs / result.sendWindowMs) * 100
        : (loaderCpuMs / wallMs) * 100,
  };
}

/** How long the load generator may take to answer a run. */
function runTimeoutMs(run: RunCommand): number {
  return run.durationMs + 2 * run.drainMs + 60_000;
}

async function measureRun(loader: Loader, server: ServerHandle, run: RunCommand, label: string) {
  const pids = server.processes.map((child) => child.pid);
  const postgres = await watchPostgres(server.postgresUrl, pids);
  const stopPerf = startPerfRecord(`${label} ${server.label} ${run.mode}`, pids);
  let postgresCpu: Promise<PostgresCpu> | undefined;
  try {
    const [cpu0, load0, t0] = [totalCpuMs(pids), loader.cpuMs(), Date.now()];
    postgres?.begin();
    const { result } = await loader.request(run, 'result', runTimeoutMs(run));
    const [cpu1, load1, t1] = [totalCpuMs(pids), loader.cpuMs(), Date.now()];
    postgresCpu = postgres?.end();
    await stopPerf();
    return {
      ...result,
      ...derive(result, cpu1 - cpu0, load1 - load0, t1 - t0),
      postgres: await postgresCpu,
    };
  } finally {
    // A run that failed: the watcher's polling and connection, and the
    // recording, end all the same.
    if (!postgresCpu) await Promise.allSettled([postgres?.end(), stopPerf()]);
  }
}

/**
 * How long a loader's last run is followed, as earlier runs are by the
 * runs after them: re-deliveries of a catch-up or a resync come seconds late.
 */
const AFTER_LAST_RUN_MS = 3_000;

/**
 * After a loader's last run: a run that sends nothing, only to count what
 * arrived after that run's result (duplicates, deliveries no send explains,
 * refusals, late messages, drops), which no next run would.
 */
async function afterLastRun(loader: Loader, last: RunCommand): Promise<RunResult> {
  const run: RunCommand = {
    ...last,
    mode: 'fixed',
    ratePerSec: 0,
    durationMs: AFTER_LAST_RUN_MS,
  };
  const { result } = await loader.request(run, 'result', runTimeoutMs(run));
  return result;
}

/**
 * Runs the scenario's first run at the maximum rate for `warmupMs`, unmeasured,
 * so that every server is measured with its hot paths compiled (V8 is still
 * optimizing a large application's code for seconds after its first
 * messages; a plain baseline has far less to compile).
 *
 * Then it waits for every delivery, for up to twice the warm-up: where
 * receivers sit on another node than senders, the senders' node can accept
 * messages faster than the receivers' node (on the same core) delivers them,
 * and a backlog left over would be counted, seconds late, in the first run.
 */
async function warmUp(
  ctx: BenchContext,
  loader: Loader,
  scenario: Scenario,
): Promise<RunResult | undefined> {
  const { warmupMs } = ctx.config;
  if (warmupMs <= 0) return undefined;
  const [first] = scenario.runs;
  const drainMs = Math.max(first.drainMs, 2 * warmupMs);
  const run: RunCommand = { ...first, mode: 'max', durationMs: warmupMs, drainMs };
  const { result } = await loader.request(run, 'result', runTimeoutMs(run));
  if (!result.drained)
    ctx.notes.push(
      `${scenario.name}: deliveries of the warm-up were still missing ${drainMs / 1000} s after it; the first run starts behind them`,
    );
  return result;
}

/** A scenario's load generator, connected, joined and warmed up. */
interface Ready {
  loader: Loader;
  connections: number;
  connectMs: Summary;
  warmUp?: RunResult;
}

/** Connects and joins every member in a fresh load generator, then warms the server up. */
async function prepare(ctx: BenchContext, scenario: Scenario): Promise<Ready> {
  const loader = Loader.start(scenario.loader, ctx.config.loadCpu);
  try {
    const ready = await loader.request(
      {
        type: 'setup',
        target: scenario.target,
        rooms: scenario.rooms,
        textBytes: ctx.config.textBytes,
        concurrency: ctx.config.connectConcurrency,
        timeoutMs: 30_000,
      },
      'ready',
      SETUP_TIMEOUT_MS,
    );
    const warmedUp = await warmUp(ctx, loader, scenario);
    return {
      loader,
      connections: ready.connections,
      connectMs: ready.connectMs,
      warmUp: warmedUp,
    };
  } catch (error) {
    await loader.close();
    throw error;
  }
}

/** One server and what to run against it, among others that take turns with it. */
export interface Entrant {
  server: ServerHandle;
  scenario: Scenario;
}

/**
 * Servers taking turns: every entrant is set up and warmed up, then each run
 * (fixed, max) is performed `repeats` times by every entrant in turn, the
 * order rotating by one each round, so that entrants compared in one table
 * row are measured minutes apart at most rather than a phase apart, under
 * the same drift of a shared machine. Each entrant's result per run is its
 * median repeat by the scenario's figure. All entrants must have the same
 * runs.
 */
export async function runInTurns(
  ctx: BenchContext,
  entrants: Entrant[],
  repeats = ctx.config.repeats,
): Promise<LoadMeasurement[][]> {
  const ready: Ready[] = [];
  try {
    for (const { scenario } of entrants) ready.push(await prepare(ctx, scenario));
    const runs = entrants[0].scenario.runs;
    const taken = entrants.map(() => runs.map((): LoadMeasurement[] => []));
    for (const [r, run] of runs.entries())
      for (let round = 0; round < repeats; round += 1)
        for (let k = 0; k < entrants.length; k += 1) {
          const i = (k + round) % entrants.length;
          const { server, scenario } = entrants[i];
          const label = repeats > 1 ? `${scenario.name} #${round + 1}` : scenario.name;
          const measured = await measureRun(ready[i].loader, server, run, label);
          taken[i][r].push({
            ...measured,
            connections: ready[i].connections,
            connectMs: ready[i].connectMs,
            runsChecked: 1,
          });
        }
    const after: RunResult[] = [];
    for (const { loader } of ready) after.push(await afterLastRun(loader, runs[runs.length - 1]));
    return taken.map((perRun, i) =>
      perRun.map((measured, r) => {
        const warmedUp = r === 0 ? ready[i].warmUp : undefined;
        const afterLast = r === runs.length - 1 ? after[i] : undefined;
        const picked = median(measured, entrants[i].scenario.figure);
        const runsChecked = measured.length + (warmedUp ? 1 : 0);
        const kept = { runs: measured, warmUp: warmedUp, afterLast };
        const integrity = integrityOf(measured, warmedUp, afterLast);
        return { ...picked, ...integrity, runsChecked, ...kept };
      }),
    );
  } finally {
    for (const { loader } of ready) await loader.close();
  }
}

/**
 * Loss, duplicates, errors and drops over runs one after the other on the
 * same connections. Each run counts what arrived from the previous run's
 * result to its own, so the check after the last run (`afterLast`) adds
 * what followed that one. A run's tail loss is still missing in the next
 * run, which counts it again, so only the last run's tail is added. A
 * warm-up that had not drained is only a note (its late deliveries land in
 * the first run), not a failure, and so is the check after the last run:
 * that run is undrained already if it is still waiting.
 */
function integrityOf(
  measured: RunResult[],
  warmedUp?: RunResult,
  afterLast?: RunResult,
): Integrity {
  const runs = [...(warmedUp ? [warmedUp] : []), ...measured, ...(afterLast ? [afterLast] : [])];
  const last = runs[runs.length - 1];
  const sum = (pick: (run: RunResult) => number) =>
    runs.reduce((total, run) => total + pick(run), 0);
  return {
    lost: sum((run) => run.lost - run.tailLost) + last.tailLost,
    tailLost: last.tailLost,
    duplicates: sum((run) => run.duplicates),
    unexpected: sum((run) => run.unexpected),
    ackErrors: sum((run) => run.ackErrors),
    skipped: sum((run) => run.skipped),
    disconnects: sum((run) => run.disconnects),
    drained: measured.every((run) => run.drained),
  };
}

/** The median repeat by `figure` (the lower middle one of an even count), with every repeat's figure. */
function median(
  measured: LoadMeasurement[],
  figure: (m: LoadMeasurement) => number = (m) => m.cpuUsPerDelivery,
): LoadMeasurement {
  if (measured.length === 1) return measured[0];
  const sorted = [...measured].sort((a, b) => figure(a) - figure(b));
  return { ...sorted[(sorted.length - 1) >> 1], repeats: measured.map(figure) };
}

/** The fixed-rate run and the max-rate run of the configured duration. */
export function fanoutRuns(ctx: BenchContext): RunCommand[] {
  const { ratePerSec, window, durationMs, drainMs } = ctx.config;
  return [
    { type: 'run', mode: 'fixed', ratePerSec, window, durationMs, drainMs },
    { type: 'run', mode: 'max', ratePerSec, window, durationMs, drainMs },
  ];
}
