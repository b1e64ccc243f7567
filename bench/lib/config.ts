/** Sizes and durations of a run, from environment variables (see bench/README.md). */
export interface BenchConfig {
  quick: boolean;
  phases: Set<Phase>;
  baselines: Set<Baseline>;
  databases: Set<'sqlite' | 'postgres'>;
  idleSteps: number[];
  rooms: number;
  members: number;
  sendersPerRoom: number;
  ratePerSec: number;
  clusterRatePerSec: number;
  window: number;
  durationMs: number;
  /** Measured runs per scenario and mode, servers taking turns; the median counts. */
  repeats: number;
  warmupMs: number;
  drainMs: number;
  durableSenders: number;
  textBytes: number;
  users: number;
  settleMs: number;
  holdMs: number;
  connectConcurrency: number;
  serverCpu: number;
  loadCpu: number;
  databaseUrl: string;
  redisUrl: string;
}

export const PHASES = ['idle', 'fanout', 'durable', 'rawws', 'cluster'] as const;
export type Phase = (typeof PHASES)[number];

export const BASELINES = ['socketio', 'ws', 'stored'] as const;
export type Baseline = (typeof BASELINES)[number];

type Source = Record<string, string | undefined>;

function flagsToEnv(argv: readonly string[]): Source {
  const env: Source = {};
  for (const arg of argv) {
    const match = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (!match)
      throw new Error(`Unknown argument ${arg} (flags are --name=value, see bench/README.md)`);
    env[`BENCH_${match[1].toUpperCase().replace(/-/g, '_')}`] = match[2] ?? '1';
  }
  return env;
}

function numberOf(source: Source, name: string, fallback: number): number {
  const raw = source[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0)
    throw new Error(`${name} must be a non-negative number, not "${raw}"`);
  return value;
}

function listOf(source: Source, name: string, fallback: string): string[] {
  return (source[name] ?? fallback)
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
}

function phasesOf(source: Source): Set<Phase> {
  const names = listOf(source, 'BENCH_PHASES', PHASES.join(','));
  for (const name of names)
    if (!(PHASES as readonly string[]).includes(name))
      throw new Error(`BENCH_PHASES: unknown phase "${name}" (known: ${PHASES.join(', ')})`);
  return new Set(names as Phase[]);
}

/** `none` runs the service alone, e.g. to compare two builds of it run after run. */
function baselinesOf(source: Source): Set<Baseline> {
  const names = listOf(source, 'BENCH_BASELINES', BASELINES.join(',')).filter(
    (name) => name !== 'none',
  );
  for (const name of names)
    if (!(BASELINES as readonly string[]).includes(name))
      throw new Error(
        `BENCH_BASELINES: unknown baseline "${name}" (known: ${BASELINES.join(', ')}, none)`,
      );
  return new Set(names as Baseline[]);
}

function databasesOf(source: Source): Set<'sqlite' | 'postgres'> {
  const names = listOf(source, 'BENCH_DATABASES', 'sqlite,postgres');
  for (const name of names)
    if (name !== 'sqlite' && name !== 'postgres')
      throw new Error(`BENCH_DATABASES: unknown database "${name}"`);
  return new Set(names as Array<'sqlite' | 'postgres'>);
}

export function loadConfig(env: NodeJS.ProcessEnv, argv: readonly string[]): BenchConfig {
  const source: Source = { ...env, ...flagsToEnv(argv) };
  const quick = source.BENCH_QUICK === '1' || source.BENCH_QUICK === 'true';
  const pick = (full: number, short: number) => (quick ? short : full);
  const n = (name: string, full: number, short: number) =>
    numberOf(source, name, pick(full, short));
  return {
    quick,
    phases: phasesOf(source),
    baselines: baselinesOf(source),
    databases: databasesOf(source),
    idleSteps: listOf(source, 'BENCH_IDLE_STEPS', quick ? '500,1000' : '1000,5000,10000').map(
      Number,
    ),
    rooms: n('BENCH_ROOMS', 10, 5),
    members: n('BENCH_MEMBERS', 50, 20),
    sendersPerRoom: n('BENCH_SENDERS_PER_ROOM', 2, 1),
    ratePerSec: n('BENCH_RATE', 200, 100),
    clusterRatePerSec: n('BENCH_CLUSTER_RATE', 50, 50),
    window: n('BENCH_WINDOW', 8, 8),
    durationMs: n('BENCH_DURATION_MS', 10_000, 3_000),
    repeats: Math.max(1, Math.round(n('BENCH_REPEATS', 3, 1))),
    warmupMs: n('BENCH_WARMUP_MS', 30_000, 1_000),
    drainMs: n('BENCH_DRAIN_MS', 10_000, 5_000),
    durableSenders: n('BENCH_DURABLE_SENDERS', 50, 20),
    textBytes: n('BENCH_TEXT_BYTES', 100, 100),
    users: n('BENCH_USERS', 20, 10),
    settleMs: n('BENCH_SETTLE_MS', 3_000, 1_000),
    // Past a ping interval and its timeout (25 s + 20 s on every server here): each connection
    // held has answered a ping by the check, and one that could not has been dropped.
    holdMs: n('BENCH_HOLD_MS', 50_000, 2_000),
    connectConcurrency: n('BENCH_CONNECT_CONCURRENCY', 100, 100),
    serverCpu: n('BENCH_SERVER_CPU', 0, 0),
    loadCpu: n('BENCH_LOAD_CPU', 1, 1),
    databaseUrl: source.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
    redisUrl: source.REDIS_URL ?? 'redis://127.0.0.1:6379',
  };
}
