import { BASELINES } from './config';
import type { BenchContext } from './context';
import { SATURATED_PERCENT, type LoadMeasurement } from './measure';
import { num } from './format';
import { perfDir } from './perf-record';
import type { Results } from './results';

/** The header lines: machine, pinning, sizes. */
export function describe(ctx: BenchContext): string[] {
  const { config: c, host } = ctx;
  const pinning = host.taskset
    ? `taskset: servers on CPU ${c.serverCpu}, load generators on CPU ${c.loadCpu} (PostgreSQL and Redis unpinned)`
    : host.profiling
      ? 'profiling: nothing pinned, so that the V8 sampler sees the server busy'
      : (host.unpinned ?? 'taskset not found: nothing pinned');
  return [
    `${c.quick ? 'quick' : 'full'} run · ${host.cpus} CPUs · Node ${host.node} · ${pinning}`,
    `CLK_TCK ${host.clockTicks} · open files soft/hard ${host.openFiles.soft}/${host.openFiles.hard}`,
    `runs of ${c.durationMs / 1000} s after a ${c.warmupMs / 1000} s unmeasured warm-up at max rate (drain ≤ ${c.drainMs / 1000} s) · fan-out ${c.rooms} rooms × ${c.members} members, ` +
      `${c.sendersPerRoom} sender(s)/room, fixed ${c.ratePerSec} msg/s, max window ${c.window} · durable ${c.durableSenders} senders · ` +
      `two nodes ${c.clusterRatePerSec} msg/s · ` +
      `text ${c.textBytes} B · idle steps ${c.idleSteps.join(', ')}`,
    ...optionLines(ctx),
  ];
}

/** Settings that change what a run measures or leaves behind. */
function optionLines({ config }: BenchContext): string[] {
  const lines: string[] = [];
  if (config.baselines.size < BASELINES.length)
    lines.push(`baselines: ${[...config.baselines].join(', ') || 'none'}`);
  const perf = perfDir();
  if (perf) lines.push(`perf: every measured run sampled into ${perf}`);
  return lines;
}

function allMeasurements(results: Results): Array<[string, LoadMeasurement]> {
  const list: Array<[string, LoadMeasurement]> = [];
  for (const [name, runs] of Object.entries(results.fanout))
    for (const m of runs ?? []) list.push([`fan-out ${m.mode} · ${name}`, m]);
  for (const [name, runs] of Object.entries(results.stored.fanout))
    for (const m of runs ?? []) list.push([`fan-out ${m.mode} · storing ${name}`, m]);
  for (const [name, m] of Object.entries(results.durable))
    if (m) list.push([`durable · ${name}`, m]);
  for (const [name, m] of Object.entries(results.stored.durable))
    if (m) list.push([`durable · storing ${name}`, m]);
  for (const [name, runs] of Object.entries(results.rawWs))
    for (const m of runs ?? []) list.push([`raw ws ${m.mode} · ${name}`, m]);
  if (results.cluster)
    list.push(
      ['two nodes · one node', results.cluster.oneNode],
      ['two nodes · cross-node', results.cluster.crossNode],
    );
  return list;
}

function saturationNote(label: string, m: LoadMeasurement): string | undefined {
  if (m.loaderCpuPercent < SATURATED_PERCENT) return undefined;
  const cores = `load generator at ${m.loaderCpuPercent.toFixed(0)}% of its core while sending, server at ${m.serverCpuPercent.toFixed(0)}% over the run`;
  const bound =
    m.serverCpuPercent >= SATURATED_PERCENT
      ? 'both saturated, throughput is a lower bound for either'
      : 'the client bounds this run';
  return `${label}: ${cores}: ${bound}`;
}

function loadNotes(results: Results): string[] {
  return allMeasurements(results).flatMap(([label, m]) =>
    [m.firstError && `${label}: ${m.firstError}`, saturationNote(label, m)].filter(
      (note): note is string => Boolean(note),
    ),
  );
}

function idleNotes(ctx: BenchContext, results: Results): string[] {
  const notes = Object.entries(results.idle).flatMap(([target, idle]) =>
    (idle?.steps ?? [])
      .filter((step) => step.loaderCpuPercent >= SATURATED_PERCENT)
      .map(
        (step) =>
          `idle @${step.connections} · ${target}: load generator at ${step.loaderCpuPercent.toFixed(0)}% of its core while connecting: the client bounds the connect rate`,
      ),
  );
  for (const [target, idle] of Object.entries(results.idle))
    for (const step of idle?.steps ?? [])
      if (step.firstError) notes.push(`idle @${step.connections} · ${target}: ${step.firstError}`);
  const skipped = results.idle.service?.skippedSteps ?? [];
  if (skipped.length > 0)
    notes.push(
      `idle steps skipped (open-file hard limit ${ctx.host.openFiles.hard}): ${skipped.join(', ')}`,
    );
  return notes;
}

/**
 * The spread behind each median, one line per kind of run: the lowest and
 * highest figure (CPU µs per delivery, or messages a second for durable
 * sends) of each server's repeats.
 */
function repeatNotes(results: Results): string[] {
  const lines = new Map<string, string[]>();
  for (const [label, m] of allMeasurements(results)) {
    if (!m.repeats || m.repeats.length < 2) continue;
    const [kind, server] = label.split(' · ');
    const low = Math.min(...m.repeats);
    const high = Math.max(...m.repeats);
    const digits = high >= 100 ? 0 : 2;
    const spread = `${server} ${low.toFixed(digits)}–${high.toFixed(digits)}`;
    lines.set(kind, [...(lines.get(kind) ?? []), spread]);
  }
  return [...lines].map(
    ([kind, spreads]) => `${kind}: repeats ranged ${spreads.join(', ')} (median shown)`,
  );
}

/**
 * Server CPU is the server processes' alone: on PostgreSQL the database
 * server's work is not in it (on SQLite it runs in the server process and
 * is). What the server's PostgreSQL backends used over the same window is
 * given apart, per run shown.
 */
function postgresNotes(results: Results): string[] {
  const measured = allMeasurements(results).flatMap(([label, m]) =>
    m.postgres ? [{ label, m, postgres: m.postgres }] : [],
  );
  if (measured.length === 0) return [];
  const lines = [
    "server CPU on PostgreSQL rows (and on two nodes) counts the server's processes only, not PostgreSQL's (nor Redis's); on SQLite the database work runs in the server process and is counted. The CPU time of each server's own PostgreSQL backends over the same window follows",
  ];
  for (const { label, m, postgres } of measured) {
    if ('error' in postgres) {
      lines.push(`${label}: PostgreSQL backends' CPU not read: ${postgres.error}`);
      continue;
    }
    const perDelivery = num(m.deliveries > 0 ? (postgres.cpuMs * 1000) / m.deliveries : NaN, 2);
    lines.push(
      `${label}: PostgreSQL backends ${perDelivery} µs/delivery besides server CPU (${num(postgres.cpuMs)} ms over ${postgres.backends} backends)`,
    );
  }
  return lines;
}

/** Runs with errors, runs whose load generator used (nearly) all of its core, the spread of repeats, and PostgreSQL's CPU. */
export function runNotes(ctx: BenchContext, results: Results): string[] {
  return [
    ...loadNotes(results),
    ...idleNotes(ctx, results),
    ...repeatNotes(results),
    ...postgresNotes(results),
  ];
}
