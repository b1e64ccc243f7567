/**
 * `npm run bench`: the built service against two bare baselines, driven by
 * load generators in child processes; prints one table and writes it, with
 * every figure, to bench/results/<timestamp>.json. See bench/README.md.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Target } from './common/protocol';
import { installExitHandlers, isInterrupted, registerCleanup, runCleanups } from './lib/cleanup';
import { loadConfig, type BenchConfig } from './lib/config';
import { openFilesFor, probeHost, type BenchContext } from './lib/context';
import { postgresStorage, redisNamespace, sqliteStorage, type Storage } from './lib/databases';
import { describe, runNotes } from './lib/notes';
import { RESULTS_DIR } from './lib/paths';
import { stopAll } from './lib/processes';
import { buildRows, renderTable } from './lib/report';
import { DATABASE_LABEL, emptyResults, type Database, type Results } from './lib/results';
import {
  migrate,
  newJwtSecret,
  serviceEnv,
  startBaseline,
  startService,
  type ServerHandle,
  type ServerPlacement,
} from './lib/servers';
import { runInTurns, type LoadMeasurement, type Scenario } from './lib/measure';
import { baselineIdleTokens, serviceIdleTokens } from './lib/idle-accounts';
import { idleSteps, idleUsersNeeded, measureIdle } from './phases/idle';
import { durableScenario, fanoutScenario, measureCluster, rawWsScenario } from './phases/rooms';

function log(message: string): void {
  console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}`);
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Runs one step; a failure is recorded and the run goes on. */
async function attempt(results: Results, phase: string, work: () => Promise<void>): Promise<void> {
  if (isInterrupted()) return;
  log(`${phase} …`);
  const started = Date.now();
  try {
    await work();
    log(`${phase}: done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } catch (error) {
    results.errors.push({ phase, message: errorText(error) });
    log(`${phase}: FAILED: ${errorText(error)}`);
  }
}

/** Starts a server on fresh storage, does `work`, then stops it and drops the storage, whatever happens. */
async function withServer(
  makeStorage: () => Promise<Storage[]>,
  start: (storage: Storage[]) => Promise<ServerHandle>,
  work: (server: ServerHandle) => Promise<void>,
): Promise<void> {
  const storage = await makeStorage();
  const drops = storage.map((store) => registerCleanup(() => store.drop()));
  try {
    const server = await start(storage);
    try {
      await work(server);
    } finally {
      await server.stop();
    }
  } finally {
    for (const drop of drops)
      await drop().catch((error: unknown) => log(`cleanup: ${errorText(error)}`));
  }
}

/** The idle phase's largest step: connections open at once, each a user of its own. */
function idleConnections(ctx: BenchContext): number {
  return Math.max(0, ...idleSteps(ctx).steps);
}

function placement(ctx: BenchContext): ServerPlacement {
  const connections = ctx.config.phases.has('idle') ? idleConnections(ctx) : 0;
  return { cpu: ctx.config.serverCpu, openFiles: openFilesFor(ctx.host, connections) };
}

/** With the inspector open, for a full GC before each memory reading. */
function idlePlacement(ctx: BenchContext): ServerPlacement {
  return { ...placement(ctx), inspect: true };
}

function envOf(storage: Storage[], jwtSecret = newJwtSecret()): NodeJS.ProcessEnv {
  return Object.assign(
    serviceEnv(jwtSecret),
    ...storage.map((store) => store.env),
  ) as NodeJS.ProcessEnv;
}

async function storageFor(ctx: BenchContext, db: Database): Promise<Storage[]> {
  return db === 'sqlite' ? [sqliteStorage()] : [await postgresStorage(ctx.config.databaseUrl)];
}

/** Phase 1, one server after the other: the bare Socket.IO server, then the service (storage plays no part). */
async function benchIdle(ctx: BenchContext, results: Results): Promise<void> {
  const { phases, baselines, databases } = ctx.config;
  if (!phases.has('idle')) return;
  if (baselines.has('socketio'))
    await attempt(results, '1 idle · bare Socket.IO', () =>
      withServer(
        () => Promise.resolve([]),
        () => startBaseline('socketio', idlePlacement(ctx)),
        async (server) => {
          const tokens = baselineIdleTokens(idleUsersNeeded(ctx));
          results.idle.baseline = await measureIdle(ctx, server, 'baseline', tokens);
        },
      ),
    );
  if (databases.has('sqlite'))
    await attempt(results, '1 idle · service (SQLite)', () => {
      const storage = sqliteStorage();
      const jwtSecret = newJwtSecret();
      return withServer(
        () => Promise.resolve([storage]),
        () => startService('service (SQLite)', envOf([storage], jwtSecret), idlePlacement(ctx)),
        async (server) => {
          const sqlitePath = storage.env.SQLITE_PATH ?? '';
          const tokens = serviceIdleTokens(sqlitePath, jwtSecret, idleUsersNeeded(ctx));
          results.idle.service = await measureIdle(ctx, server, 'service', tokens);
        },
      );
    });
}

/** A server that takes turns with the others of a phase, on fresh storage of its own. */
interface Contender {
  label: string;
  target: Target;
  storage(): Promise<Storage[]>;
  start(storage: Storage[]): Promise<ServerHandle>;
  /** Where its results go: one measurement per run of the phase. */
  record(measured: LoadMeasurement[]): void;
}

function bareSocketIo(ctx: BenchContext, record: Contender['record']): Contender {
  return {
    label: 'bare Socket.IO',
    target: 'baseline',
    storage: () => Promise.resolve([]),
    start: () => startBaseline('socketio', placement(ctx)),
    record,
  };
}

function service(ctx: BenchContext, db: Database, record: Contender['record']): Contender {
  const label = `service (${DATABASE_LABEL[db]})`;
  return {
    label,
    target: 'service',
    storage: () => storageFor(ctx, db),
    start: (storage) => startService(label, envOf(storage), placement(ctx)),
    record,
  };
}

function storingSocketIo(ctx: BenchContext, db: Database, record: Contender['record']): Contender {
  return {
    label: `bare Socket.IO, storing (${DATABASE_LABEL[db]})`,
    target: 'baseline',
    storage: () => storageFor(ctx, db),
    start: async ([storage]) => {
      await migrate(storage.env);
      return startBaseline('stored', placement(ctx), storage.env);
    },
    record,
  };
}

/** The databases the service (and the storing baseline) run on in this bench. */
function databasesIn(ctx: BenchContext): Database[] {
  const all: Database[] = ['sqlite', 'postgres'];
  return all.filter(
    (db) => ctx.config.databases.has(db) && (db === 'sqlite' || !ctx.host.postgres),
  );
}

type Sink = Contender['record'];

/** Where each Socket.IO server's results go. */
interface SocketIoSinks {
  bare: Sink;
  service(db: Database): Sink;
  storing(db: Database): Sink;
}

/** The bare Socket.IO server, the service and the storing baseline on each database. */
function socketIoContenders(ctx: BenchContext, sinks: SocketIoSinks): Contender[] {
  const { baselines } = ctx.config;
  const contenders: Contender[] = [];
  if (baselines.has('socketio')) contenders.push(bareSocketIo(ctx, sinks.bare));
  for (const db of databasesIn(ctx)) contenders.push(service(ctx, db, sinks.service(db)));
  if (baselines.has('stored'))
    for (const db of databasesIn(ctx)) contenders.push(storingSocketIo(ctx, db, sinks.storing(db)));
  return contenders;
}

/** Phase 2 (and 6): a fixed-rate and a max-rate measurement each. */
function fanoutContenders(ctx: BenchContext, results: Results): Contender[] {
  return socketIoContenders(ctx, {
    bare: (measured) => void (results.fanout.baseline = measured),
    service: (db) => (measured) => void (results.fanout[db] = measured),
    storing: (db) => (measured) => void (results.stored.fanout[db] = measured),
  });
}

/** Phase 3 (and 6): one measurement each. */
function durableContenders(ctx: BenchContext, results: Results): Contender[] {
  return socketIoContenders(ctx, {
    bare: ([measured]) => void (results.durable.baseline = measured),
    service:
      (db) =>
      ([measured]) =>
        void (results.durable[db] = measured),
    storing:
      (db) =>
      ([measured]) =>
        void (results.stored.durable[db] = measured),
  });
}

/** Phase 4: the service's `/ws` against the bare `ws` server. */
function rawWsContenders(ctx: BenchContext, results: Results): Contender[] {
  const contenders: Contender[] = [];
  if (ctx.config.databases.has('sqlite'))
    contenders.push(service(ctx, 'sqlite', (measured) => void (results.rawWs.service = measured)));
  if (ctx.config.baselines.has('ws'))
    contenders.push({
      label: 'bare ws',
      target: 'baseline',
      storage: () => Promise.resolve([]),
      start: () => startBaseline('ws', placement(ctx)),
      record: (measured) => void (results.rawWs.baseline = measured),
    });
  return contenders;
}

type ScenarioOf = (ctx: BenchContext, server: ServerHandle, target: Target) => Promise<Scenario>;

/**
 * Starts every contender of a phase (one that fails to start is recorded and
 * left out), lets them take turns run by run (`runInTurns`), and stops them all.
 */
async function benchInTurns(
  ctx: BenchContext,
  results: Results,
  phase: string,
  contenders: Contender[],
  scenarioOf: ScenarioOf,
): Promise<void> {
  if (contenders.length === 0) return;
  await attempt(results, phase, async () => {
    const running: Array<{ contender: Contender; server: ServerHandle }> = [];
    const drops: Array<() => Promise<void>> = [];
    try {
      for (const contender of contenders) {
        const storage = await contender.storage();
        drops.push(...storage.map((store) => registerCleanup(() => store.drop())));
        await attempt(results, `${phase} · start ${contender.label}`, async () => {
          running.push({ contender, server: await contender.start(storage) });
        });
      }
      const entrants = [];
      for (const { contender, server } of running)
        entrants.push({ server, scenario: await scenarioOf(ctx, server, contender.target) });
      const measured = await runInTurns(ctx, entrants);
      running.forEach(({ contender }, i) => contender.record(measured[i]));
    } finally {
      for (const { server } of running) await server.stop();
      for (const drop of drops)
        await drop().catch((error: unknown) => log(`cleanup: ${errorText(error)}`));
    }
  });
}

async function benchFanoutDurableRawWs(ctx: BenchContext, results: Results): Promise<void> {
  const { phases } = ctx.config;
  const usesPostgres = phases.has('fanout') || phases.has('durable');
  if (usesPostgres && ctx.config.databases.has('postgres') && ctx.host.postgres)
    ctx.notes.push(`PostgreSQL runs skipped: ${ctx.host.postgres}`);
  if (phases.has('fanout'))
    await benchInTurns(ctx, results, '2 fan-out', fanoutContenders(ctx, results), fanoutScenario);
  if (phases.has('durable'))
    await benchInTurns(ctx, results, '3 durable', durableContenders(ctx, results), durableScenario);
  if (phases.has('rawws'))
    await benchInTurns(
      ctx,
      results,
      '4 raw WebSocket',
      rawWsContenders(ctx, results),
      rawWsScenario,
    );
}

async function benchCluster(ctx: BenchContext, results: Results): Promise<void> {
  if (!ctx.config.phases.has('cluster')) return;
  const missing = ctx.host.postgres ?? ctx.host.redis;
  if (missing) return void ctx.notes.push(`two-node phase skipped: ${missing}`);
  await attempt(results, '5 two nodes over Redis', () =>
    withServer(
      async () => [
        await postgresStorage(ctx.config.databaseUrl),
        redisNamespace(ctx.config.redisUrl),
      ],
      (storage) =>
        startService('service cluster (PostgreSQL + Redis)', envOf(storage), placement(ctx), 2),
      async (server) => {
        results.cluster = await measureCluster(ctx, server);
      },
    ),
  );
}

/** A URL as results may show it: results get shared, passwords must not. */
function withoutPassword(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = 'redacted';
    if (parsed.searchParams.has('password')) parsed.searchParams.set('password', 'redacted');
    return parsed.toString();
  } catch {
    return '(not a URL)';
  }
}

function writeJson(ctx: BenchContext, results: Results, table: string, startedAt: Date): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = join(RESULTS_DIR, `${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  const config: Omit<BenchConfig, 'phases' | 'baselines' | 'databases'> & {
    phases: string[];
    baselines: string[];
    databases: string[];
  } = {
    ...ctx.config,
    databaseUrl: withoutPassword(ctx.config.databaseUrl),
    redisUrl: withoutPassword(ctx.config.redisUrl),
    phases: [...ctx.config.phases],
    baselines: [...ctx.config.baselines],
    databases: [...ctx.config.databases],
  };
  const rows = buildRows(ctx, results);
  const body = {
    startedAt,
    finishedAt: new Date(),
    config,
    host: ctx.host,
    notes: ctx.notes,
    rows,
    table,
    results,
  };
  writeFileSync(file, `${JSON.stringify(body, null, 2)}\n`);
  return file;
}

async function main(): Promise<number> {
  installExitHandlers();
  const startedAt = new Date();
  const config = loadConfig(process.env, process.argv.slice(2));
  const ctx: BenchContext = { config, host: await probeHost(config), notes: [] };
  for (const line of describe(ctx)) log(line);
  const results = emptyResults();
  try {
    await benchIdle(ctx, results);
    await benchFanoutDurableRawWs(ctx, results);
    await benchCluster(ctx, results);
  } finally {
    await stopAll();
    await runCleanups();
  }
  ctx.notes.push(...runNotes(ctx, results));
  const table = [...describe(ctx), '', renderTable(buildRows(ctx, results))].join('\n');
  console.log(`\n${table}\n`);
  for (const note of ctx.notes) console.log(`note: ${note}`);
  for (const { phase, message } of results.errors) console.log(`error in ${phase}: ${message}`);
  console.log(`\nresults: ${writeJson(ctx, results, table, startedAt)}`);
  if (isInterrupted()) return 130;
  return results.errors.length > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
