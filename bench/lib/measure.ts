import type { RoomPlan, RunCommand, RunResult, Target } from '../common/protocol';
import type { Summary } from '../common/summary';
import type { BenchContext } from './context';
import { Loader, type LoaderKind } from './loader-client';
import { startPerfRecord } from './perf-record';
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
  /** Server CPU time over wall time, in percent of one core (summed over nodes). */
  serverCpuPercent: number;
  loaderCpuPercent: number;
}

export interface Scenario {
  /** The phase it belongs to, naming its perf recordings. */
  name: string;
  loader: LoaderKind;
  target: Target;
  rooms: RoomPlan[];
  runs: RunCommand[];
}

const SETUP_TIMEOUT_MS = 180_000;

function derive(result: RunResult, serverCpuMs: number, loaderCpuMs: number, wallMs: number) {
  const activeSeconds = Math.max(result.activeMs, 1) / 1000;
  const settled = result.acked > 0 ? result.acked : result.sent;
  return {
    serverCpuMs,
    loaderCpuMs,
    wallMs,
    deliveriesPerSec: result.deliveries / activeSeconds,
    messagesPerSec: settled / activeSeconds,
    cpuUsPerDelivery: result.deliveries > 0 ? (serverCpuMs * 1000) / result.deliveries : 0,
    serverCpuPercent: (serverCpuMs / wallMs) * 100,
    loaderCpuPercent: (loaderCpuMs / wallMs) * 100,
  };
}

async function measureRun(loader: Loader, server: ServerHandle, run: RunCommand, label: string) {
  const pids = server.processes.map((child) => child.pid);
  const timeoutMs = run.durationMs + 2 * run.drainMs + 60_000;
  const stopPerf = startPerfRecord(`${label} ${server.label} ${run.mode}`, pids);
  const [cpu0, load0, t0] = [totalCpuMs(pids), loader.cpuMs(), Date.now()];
  const { result } = await loader.request(run, 'result', timeoutMs);
  const [cpu1, load1, t1] = [totalCpuMs(pids), loader.cpuMs(), Date.now()];
  await stopPerf();
  return { ...result, ...derive(result, cpu1 - cpu0, load1 - load0, t1 - t0) };
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
async function warmUp(ctx: BenchContext, loader: Loader, scenario: Scenario): Promise<void> {
  const { warmupMs } = ctx.config;
  if (warmupMs <= 0) return;
  const [first] = scenario.runs;
  const drainMs = Math.max(first.drainMs, 2 * warmupMs);
  const run: RunCommand = { ...first, mode: 'max', durationMs: warmupMs, drainMs };
  const { result } = await loader.request(run, 'result', warmupMs + 2 * drainMs + 60_000);
  if (!result.drained)
    ctx.notes.push(
      `${scenario.name}: deliveries of the warm-up were still missing ${drainMs / 1000} s after it; the first run starts behind them`,
    );
}

/** Connects and joins every member in a fresh load generator, then performs each run in turn. */
export async function runScenario(
  ctx: BenchContext,
  server: ServerHandle,
  scenario: Scenario,
): Promise<LoadMeasurement[]> {
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
    await warmUp(ctx, loader, scenario);
    const measurements: LoadMeasurement[] = [];
    for (const run of scenario.runs) {
      const measured = await measureRun(loader, server, run, scenario.name);
      measurements.push({
        ...measured,
        connections: ready.connections,
        connectMs: ready.connectMs,
      });
    }
    return measurements;
  } finally {
    await loader.close();
  }
}

/** The fixed-rate run and the max-rate run of the configured duration. */
export function fanoutRuns(ctx: BenchContext): RunCommand[] {
  const { ratePerSec, window, durationMs, drainMs } = ctx.config;
  return [
    { type: 'run', mode: 'fixed', ratePerSec, window, durationMs, drainMs },
    { type: 'run', mode: 'max', ratePerSec, window, durationMs, drainMs },
  ];
}
