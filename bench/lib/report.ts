import type { IdleResult, IdleStep } from '../phases/idle';
import type { BenchContext } from './context';
import { kib, num, percentiles, ratio } from './format';
import { clientBound, type LoadMeasurement } from './measure';
import { DATABASE_LABEL, type Database, type Results } from './results';

export type Verdict = 'PASS' | 'FAIL' | 'SKIP' | 'SKIP (client-bound)' | '';

export interface Row {
  /** A section title; the other fields are empty. */
  section?: string;
  metric: string;
  service: string;
  baseline: string;
  ratio?: number;
  target: string;
  verdict: Verdict;
}

/** The targets of bench/README.md, as ratios service / baseline. */
export const TARGETS = {
  cpuPerDelivery: 1.15,
  rawWsCpuPerDelivery: 1.15,
  rssPerConnection: 1.2,
  durablePostgres: 0.5,
  heldConnections: 10_000,
} as const;

const DATABASES: Database[] = ['sqlite', 'postgres'];

type Measured = LoadMeasurement | undefined;

function section(title: string): Row {
  return { section: title, metric: '', service: '', baseline: '', target: '', verdict: '' };
}

function row(metric: string, service: string, baseline: string, extra: Partial<Row> = {}): Row {
  return { metric, service, baseline, target: '', verdict: '', ...extra };
}

function atMost(value: number | undefined, limit: number): Partial<Row> {
  return {
    ratio: value,
    target: `≤ ${limit.toFixed(2)}`,
    verdict: value === undefined ? 'SKIP' : value <= limit ? 'PASS' : 'FAIL',
  };
}

function atLeast(value: number | undefined, limit: number): Partial<Row> {
  return {
    ratio: value,
    target: `≥ ${limit.toFixed(2)}`,
    verdict: value === undefined ? 'SKIP' : value >= limit ? 'PASS' : 'FAIL',
  };
}

/** Lost / duplicated over every run of the row (see `runsChecked`), with what else went wrong. */
function lossText(m?: LoadMeasurement): string {
  if (!m) return '—';
  const problems = [
    m.drained ? '' : ' (undrained)',
    m.unexpected ? `, ${m.unexpected} unexpected` : '',
    m.disconnects ? `, ${m.disconnects} drop` : '',
    m.ackErrors ? `, ${m.ackErrors} refused` : '',
    m.skipped ? `, ${m.skipped} skipped` : '',
  ];
  const runs = m.runsChecked === 1 ? '1 run' : `${m.runsChecked} runs`;
  return `${m.lost} / ${m.duplicates}${problems.join('')} in ${runs}`;
}

/** Nothing lost, duplicated, unexpected, refused, skipped or dropped, and everything delivered, in any run of the row. */
function isClean(m: LoadMeasurement): boolean {
  return (
    m.lost === 0 &&
    m.duplicates === 0 &&
    m.unexpected === 0 &&
    m.drained &&
    m.disconnects === 0 &&
    m.ackErrors === 0 &&
    m.skipped === 0
  );
}

function lossVerdict(m?: LoadMeasurement): Partial<Row> {
  if (!m) return { target: '0 / 0', verdict: 'SKIP' };
  return { target: '0 / 0', verdict: isClean(m) ? 'PASS' : 'FAIL' };
}

/** What a target measures, which decides how a saturated load generator bears on its verdict. */
type TargetKind = 'throughput' | 'cost';

/**
 * A target's verdict only counts on clean runs: a service that lost or
 * refused messages fails it whatever its figure, and a baseline that did
 * leaves nothing to compare with. Where a load generator was saturated
 * while sending, a throughput target (≥, service / baseline) follows
 * `unlessClientBound`, a cost target (CPU per delivery) `unlessRatesApart`.
 */
function onCleanRuns(
  check: (ratio: number | undefined) => Partial<Row>,
  [s, b]: [Measured, Measured],
  kind: TargetKind,
): (ratio: number | undefined) => Partial<Row> {
  return (r) => {
    const judged = check(r);
    if (!judged.verdict) return judged;
    if (s && !isClean(s)) return { ...judged, verdict: 'FAIL' };
    if (b && !isClean(b)) return { ...judged, verdict: 'SKIP' };
    return kind === 'throughput'
      ? unlessClientBound(judged, [s, b])
      : unlessRatesApart(judged, [s, b]);
  };
}

/** How far apart two client-bound runs' delivery rates may be for their costs to be compared. */
const COMPARABLE_RATES = 0.1;

/**
 * A cost per delivery depends on the rate it was measured at (batching,
 * timers and garbage collection spread over more or fewer deliveries). On
 * runs that their load generators, not the servers, held back, the two
 * servers ran at whatever rate each generator kept up: their costs are
 * compared only where those rates are within 10 % of each other, else the
 * verdict is SKIP (client-bound).
 */
function unlessRatesApart(judged: Partial<Row>, [s, b]: [Measured, Measured]): Partial<Row> {
  if (judged.verdict !== 'PASS' && judged.verdict !== 'FAIL') return judged;
  if (!s || !b || (!clientBound(s) && !clientBound(b))) return judged;
  const apart = Math.abs(s.deliveriesPerSec - b.deliveriesPerSec) / b.deliveriesPerSec;
  return apart <= COMPARABLE_RATES ? judged : { ...judged, verdict: 'SKIP (client-bound)' };
}

/**
 * A client-bound run's throughput is a lower bound of what its server can
 * do. For a target ratio service / baseline ≥ limit, a PASS stands when
 * only the service's load generator was saturated (its true figure is
 * higher), and a FAIL when only the baseline's was (its true figure is
 * higher); any other verdict on a client-bound run is SKIP (client-bound).
 */
function unlessClientBound(judged: Partial<Row>, [s, b]: [Measured, Measured]): Partial<Row> {
  if (judged.verdict !== 'PASS' && judged.verdict !== 'FAIL') return judged;
  const service = s !== undefined && clientBound(s);
  const baseline = b !== undefined && clientBound(b);
  if (!service && !baseline) return judged;
  if (service && !baseline && judged.verdict === 'PASS') return judged;
  if (baseline && !service && judged.verdict === 'FAIL') return judged;
  return { ...judged, verdict: 'SKIP (client-bound)' };
}

/* ---------- 1. idle ---------- */

function stepAt(result: IdleResult | undefined, connections: number): IdleStep | undefined {
  return result?.steps.find((step) => step.connections === connections);
}

function idleStepRows(
  s: IdleStep | undefined,
  b: IdleStep | undefined,
  connections: number,
): Row[] {
  const both = (pick: (step: IdleStep) => number) => ratio(s ? pick(s) : NaN, b ? pick(b) : NaN);
  const show = (step: IdleStep | undefined, text: (step: IdleStep) => string) =>
    step ? text(step) : '—';
  const at = `@${num(connections)}`;
  const connect = (step: IdleStep) =>
    `${percentiles(step.connectMs, ['p50', 'p99'])}, ${num(step.connectsPerSec)}/s`;
  const cpu = (step: IdleStep) => `${num(step.serverCpuUsPerConnect)} µs`;
  const bytesRow = (metric: string, pick: (step: IdleStep) => number, extra: Partial<Row> = {}) =>
    row(
      metric,
      show(s, (step) => kib(pick(step))),
      show(b, (step) => kib(pick(step))),
      {
        ratio: both(pick),
        ...extra,
      },
    );
  return [
    bytesRow(
      `RSS per connection after a full GC ${at}`,
      (step) => step.retainedPerConnectionBytes,
      atMost(
        both((step) => step.retainedPerConnectionBytes),
        TARGETS.rssPerConnection,
      ),
    ),
    bytesRow(
      `  same, per connection added since the step before ${at}`,
      (step) => step.retainedPerAddedConnectionBytes,
    ),
    bytesRow(`  same, as read without a GC ${at}`, (step) => step.rssPerConnectionBytes),
    row(`connect p50 / p99, rate ${at}`, show(s, connect), show(b, connect), {
      ratio: both((step) => step.connectMs.p50),
    }),
    row(`server CPU per connect ${at}`, show(s, cpu), show(b, cpu), {
      ratio: both((step) => step.serverCpuUsPerConnect),
    }),
  ];
}

function heldText(result?: IdleResult): string {
  if (!result) return '—';
  const { open, connections, dropped, failed } = result.held;
  return `${num(open)}/${num(connections)} open, ${failed} failed, ${dropped} dropped`;
}

function heldVerdict(result?: IdleResult): Partial<Row> {
  const target = `${num(TARGETS.heldConnections)}, no drop`;
  if (!result || result.held.connections < TARGETS.heldConnections)
    return { target, verdict: 'SKIP' };
  const { open, connections, dropped, failed } = result.held;
  return {
    target,
    verdict: open === connections && dropped === 0 && failed === 0 ? 'PASS' : 'FAIL',
  };
}

function idleRows(results: Results): Row[] {
  const { service, baseline } = results.idle;
  if (!service && !baseline) return [];
  const counts = [
    ...new Set(
      [...(service?.steps ?? []), ...(baseline?.steps ?? [])].map((step) => step.connections),
    ),
  ];
  return [
    section(
      '1. Idle authenticated connections: service (SQLite) vs bare Socket.IO; ratio of p50 for connect',
    ),
    ...counts.flatMap((n) => idleStepRows(stepAt(service, n), stepAt(baseline, n), n)),
    row(
      'all held after the hold time',
      heldText(service),
      heldText(baseline),
      heldVerdict(service),
    ),
    row(
      'server CPU while holding them, ms/s',
      service ? num(service.holdCpuMsPerSec) : '—',
      baseline ? num(baseline.holdCpuMsPerSec) : '—',
      { ratio: ratio(service?.holdCpuMsPerSec ?? NaN, baseline?.holdCpuMsPerSec ?? NaN) },
    ),
  ];
}

/* ---------- 2. and 4. fan-out ---------- */

function modeLabel(ctx: BenchContext, m: LoadMeasurement): string {
  return m.mode === 'fixed'
    ? `fixed ${num(ctx.config.ratePerSec)} msg/s`
    : `max (window ${ctx.config.window})`;
}

/** One metric of two measurements: their texts, and the ratio of `value` (checked by `check`). */
function compare(
  metric: string,
  [s, b]: [Measured, Measured],
  text: (m: LoadMeasurement) => string,
  value: (m: LoadMeasurement) => number,
  check: (ratio: number | undefined) => Partial<Row> = (r) => ({ ratio: r }),
): Row {
  const shown = (m: Measured) => (m ? text(m) : '—');
  return row(metric, shown(s), shown(b), check(ratio(s ? value(s) : NaN, b ? value(b) : NaN)));
}

const latencyText = (m: LoadMeasurement) => percentiles(m.latencyMs, ['p50', 'p95', 'p99']);

function fanoutRows(label: string, pair: [Measured, Measured], cpuLimit: number): Row[] {
  return [
    compare(
      `${label} · messages/s`,
      pair,
      (m) => num(m.messagesPerSec),
      (m) => m.messagesPerSec,
    ),
    compare(
      `${label} · deliveries/s`,
      pair,
      (m) => num(m.deliveriesPerSec),
      (m) => m.deliveriesPerSec,
    ),
    compare(
      `${label} · server CPU µs/delivery`,
      pair,
      (m) => num(m.cpuUsPerDelivery, 2),
      (m) => m.cpuUsPerDelivery,
      onCleanRuns((r) => atMost(r, cpuLimit), pair, 'cost'),
    ),
    compare(`${label} · latency p50/p95/p99`, pair, latencyText, (m) => m.latencyMs.p50),
    row(`${label} · lost / duplicated`, lossText(pair[0]), lossText(pair[1]), lossVerdict(pair[0])),
  ];
}

/**
 * One group of rows per service measurement, each paired with the bare
 * server's run of the same index when there is one: without a baseline
 * (`--baselines=none`, or a bare server that failed) the service's rows stay,
 * with their ratio targets SKIP, or FAIL on a service row that is not clean
 * (see `onCleanRuns`).
 */
function socketIoFanoutRows(ctx: BenchContext, results: Results): Row[] {
  const { rooms, members, sendersPerRoom } = ctx.config;
  const runs = Math.max(0, ...DATABASES.map((db) => results.fanout[db]?.length ?? 0));
  const rows: Row[] = [];
  for (let index = 0; index < runs; index += 1)
    for (const db of DATABASES) {
      const s = results.fanout[db]?.[index];
      if (s)
        rows.push(
          ...fanoutRows(
            `${modeLabel(ctx, s)} · ${DATABASE_LABEL[db]}`,
            [s, results.fanout.baseline?.[index]],
            TARGETS.cpuPerDelivery,
          ),
        );
    }
  if (rows.length === 0) return [];
  const title = `2. Socket.IO fan-out, ${rooms} rooms × ${members} members, ${sendersPerRoom} sender(s)/room: service vs bare Socket.IO; ratio of p50 for latency`;
  return [section(title), ...rows];
}

function rawWsRows(ctx: BenchContext, results: Results): Row[] {
  const { service = [], baseline = [] } = results.rawWs;
  const rows = service.flatMap((s, index) =>
    fanoutRows(modeLabel(ctx, s), [s, baseline[index]], TARGETS.rawWsCpuPerDelivery),
  );
  if (rows.length === 0) return [];
  return [
    section(`4. Raw WebSocket broadcast fan-out, same rooms: service /ws (SQLite) vs bare ws`),
    ...rows,
  ];
}

/* ---------- 3. durable ---------- */

const ackText = (m: LoadMeasurement) => percentiles(m.ackMs, ['p50', 'p99']);

function durableRows(ctx: BenchContext, results: Results): Row[] {
  const b = results.durable.baseline;
  const rows = DATABASES.flatMap((db) => {
    const s = results.durable[db];
    if (!s) return [];
    const pair: [Measured, Measured] = [s, b];
    const label = DATABASE_LABEL[db];
    const target = (r: number | undefined) =>
      db === 'postgres' ? atLeast(r, TARGETS.durablePostgres) : { ratio: r };
    return [
      compare(
        `${label} · messages/s`,
        pair,
        (m) => num(m.messagesPerSec),
        (m) => m.messagesPerSec,
        onCleanRuns(target, pair, 'throughput'),
      ),
      compare(`${label} · ack p50 / p99`, pair, ackText, (m) => m.ackMs.p50),
      row(`${label} · lost / duplicated`, lossText(s), lossText(b), lossVerdict(s)),
    ];
  });
  if (rows.length === 0) return [];
  const title = `3. Durable sends, ${ctx.config.durableSenders} senders (one room each, next on ack): stored vs bare un-stored acks`;
  return [section(title), ...rows];
}

/* ---------- 6. storing alone ---------- */

function storedFanoutRows(ctx: BenchContext, results: Results, db: Database): Row[] {
  const stored = results.stored.fanout[db] ?? [];
  return stored.flatMap((floor, index) => {
    const label = `${modeLabel(ctx, floor)} · ${DATABASE_LABEL[db]} · CPU µs/delivery`;
    const cpu = (m: LoadMeasurement) => num(m.cpuUsPerDelivery, 2);
    const bare = results.fanout.baseline?.[index];
    const service = results.fanout[db]?.[index];
    return [
      compare(`${label}, storing | bare`, [floor, bare], cpu, (m) => m.cpuUsPerDelivery),
      compare(`${label}, service | storing`, [service, floor], cpu, (m) => m.cpuUsPerDelivery),
      row(
        `${modeLabel(ctx, floor)} · ${DATABASE_LABEL[db]} · storing: lost / duplicated`,
        lossText(floor),
        '',
        lossVerdict(floor),
      ),
    ];
  });
}

function storedDurableRows(results: Results, db: Database): Row[] {
  const floor = results.stored.durable[db];
  if (!floor) return [];
  const label = `durable · ${DATABASE_LABEL[db]} · messages/s`;
  const rate = (m: LoadMeasurement) => num(m.messagesPerSec);
  return [
    compare(
      `${label}, storing | bare`,
      [floor, results.durable.baseline],
      rate,
      (m) => m.messagesPerSec,
    ),
    compare(
      `${label}, service | storing`,
      [results.durable[db], floor],
      rate,
      (m) => m.messagesPerSec,
    ),
    row(
      `durable · ${DATABASE_LABEL[db]} · storing: lost / duplicated`,
      lossText(floor),
      '',
      lossVerdict(floor),
    ),
  ];
}

function storedRows(ctx: BenchContext, results: Results): Row[] {
  const rows = DATABASES.flatMap((db) => [
    ...storedFanoutRows(ctx, results, db),
    ...storedDurableRows(results, db),
  ]);
  if (rows.length === 0) return [];
  const title =
    '6. What storing alone costs: bare Socket.IO that commits each message before it emits and acks it (the reference design with its saveMessage), against the bare server and the service; columns = the two servers the row names';
  return [section(title), ...rows];
}

/* ---------- 5. two nodes ---------- */

function clusterRows(ctx: BenchContext, results: Results): Row[] {
  const cluster = results.cluster;
  if (!cluster) return [];
  const pair: [Measured, Measured] = [cluster.crossNode, cluster.oneNode];
  const rate = num(ctx.config.clusterRatePerSec);
  const title = `5. Two nodes over Redis (PostgreSQL), fixed ${rate} msg/s, both nodes on the server CPU: columns = senders on A, receivers on B | all on A`;
  return [
    section(title),
    compare('latency p50/p95/p99', pair, latencyText, (m) => m.latencyMs.p50),
    compare(
      'deliveries/s',
      pair,
      (m) => num(m.deliveriesPerSec),
      (m) => m.deliveriesPerSec,
    ),
    compare(
      'CPU µs/delivery (both nodes)',
      pair,
      (m) => num(m.cpuUsPerDelivery, 2),
      (m) => m.cpuUsPerDelivery,
    ),
    row('lost / duplicated', lossText(pair[0]), lossText(pair[1]), bothClean(pair)),
  ];
}

/** Both columns are the service (phase 5): PASS only when neither lost, duplicated, refused or left anything undrained. */
function bothClean(pair: [Measured, Measured]): Partial<Row> {
  const verdicts = pair.map((m) => lossVerdict(m).verdict);
  const verdict = verdicts.includes('FAIL') ? 'FAIL' : verdicts.includes('SKIP') ? 'SKIP' : 'PASS';
  return { target: '0 / 0 both', verdict };
}

export function buildRows(ctx: BenchContext, results: Results): Row[] {
  return [
    ...idleRows(results),
    ...socketIoFanoutRows(ctx, results),
    ...durableRows(ctx, results),
    ...rawWsRows(ctx, results),
    ...clusterRows(ctx, results),
    ...storedRows(ctx, results),
  ];
}

/* ---------- rendering ---------- */

const HEADERS = ['metric', 'service', 'baseline', 'ratio', 'target', 'result'];

function cells(r: Row): string[] {
  return [
    r.metric,
    r.service,
    r.baseline,
    r.ratio === undefined ? '' : r.ratio.toFixed(2),
    r.target,
    r.verdict,
  ];
}

export function renderTable(rows: Row[]): string {
  const body = rows.filter((r) => !r.section).map(cells);
  const widths = HEADERS.map((header, column) =>
    Math.max(header.length, ...body.map((line) => line[column].length)),
  );
  const format = (line: string[]) =>
    line
      .map((cell, column) =>
        column === 3 ? cell.padStart(widths[column]) : cell.padEnd(widths[column]),
      )
      .join('  ')
      .trimEnd();
  const rule = '-'.repeat(widths.reduce((total, width) => total + width + 2, -2));
  const lines = [format(HEADERS), rule];
  for (const r of rows) lines.push(r.section ? `\n${r.section}` : format(cells(r)));
  return lines.join('\n');
}
