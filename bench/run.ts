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
import { registerUsers } from './lib/service-api';
import {
  migrate,
  newJwtSecret,
  serviceEnv,
  startBaseline,
  startService,
  type ServerHandle,
  type ServerPlacement,
} from './lib/servers';
import { idleSteps, measureIdle } from './phases/idle';
import { measureCluster, measureDurable, measureFanout, measureRawWs } from './phases/rooms';

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

function placement(ctx: BenchContext): ServerPlacement {
  const { steps } = idleSteps(ctx);
  const connections = ctx.config.phases.has('idle') ? Math.max(0, ...steps) : 0;
  return { cpu: ctx.config.serverCpu, openFiles: openFilesFor(ctx.host, connections) };
}

function envOf(storage: Storage[]): NodeJS.ProcessEnv {
  return Object.assign(
    serviceEnv(newJwtSecret()),
    ...storage.map((store) => store.env),
  ) as NodeJS.ProcessEnv;
}

/** Phases 1 to 3 on the bare Socket.IO server. */
async function benchBareSocketIo(ctx: BenchContext, results: Results): Promise<void> {
  const { phases, baselines } = ctx.config;
  if (!baselines.has('socketio')) return;
  if (!phases.has('idle') && !phases.has('fanout') && !phases.has('durable')) return;
  await attempt(results, 'bare Socket.IO', () =>
    withServer(
      () => Promise.resolve([]),
      () => startBaseline('socketio', placement(ctx)),
      async (server) => {
        const target: Target = 'baseline';
        if (phases.has('idle'))
          await attempt(results, '1 idle · bare Socket.IO', async () => {
            results.idle.baseline = await measureIdle(ctx, server, target, []);
          });
        if (phases.has('fanout'))
          await attempt(results, '2 fan-out · bare Socket.IO', async () => {
            results.fanout.baseline = await measureFanout(ctx, server, target);
          });
        if (phases.has('durable'))
          await attempt(results, '3 durable · bare Socket.IO', async () => {
            results.durable.baseline = await measureDurable(ctx, server, target);
          });
      },
    ),
  );
}

async function storageFor(ctx: BenchContext, db: Database): Promise<Storage[]> {
  return db === 'sqlite' ? [sqliteStorage()] : [await postgresStorage(ctx.config.databaseUrl)];
}

/** Phases 1 to 4 on the service (1 and 4 only on SQLite: storage plays no part in them). */
async function benchService(ctx: BenchContext, results: Results, db: Database): Promise<void> {
  const { phases, databases } = ctx.config;
  const sqlite = db === 'sqlite';
  const wanted =
    phases.has('fanout') ||
    phases.has('durable') ||
    (sqlite && (phases.has('idle') || phases.has('rawws')));
  if (!wanted || !databases.has(db)) return;
  if (!sqlite && ctx.host.postgres)
    return void ctx.notes.push(`PostgreSQL runs skipped: ${ctx.host.postgres}`);
  const label = `service (${DATABASE_LABEL[db]})`;
  await attempt(results, label, () =>
    withServer(
      () => storageFor(ctx, db),
      (storage) => startService(label, envOf(storage), placement(ctx)),
      async (server) => {
        if (sqlite && phases.has('idle'))
          await attempt(results, `1 idle · ${label}`, async () => {
            const users = await registerUsers(server.urls[0], 'idle', ctx.config.users);
            results.idle.service = await measureIdle(
              ctx,
              server,
              'service',
              users.map((user) => user.token),
            );
          });
        if (phases.has('fanout'))
          await attempt(results, `2 fan-out · ${label}`, async () => {
            results.fanout[db] = await measureFanout(ctx, server, 'service');
          });
        if (phases.has('durable'))
          await attempt(results, `3 durable · ${label}`, async () => {
            results.durable[db] = await measureDurable(ctx, server, 'service');
          });
        if (sqlite && phases.has('rawws'))
          await attempt(results, `4 raw WebSocket · ${label}`, async () => {
            results.rawWs.service = await measureRawWs(ctx, server, 'service');
          });
      },
    ),
  );
}

/** Phases 2 and 3 on the bare Socket.IO server that stores, on fresh storage of `db`. */
async function benchStoredSocketIo(
  ctx: BenchContext,
  results: Results,
  db: Database,
): Promise<void> {
  const { phases, baselines, databases } = ctx.config;
  if (!baselines.has('stored') || !databases.has(db)) return;
  if (!phases.has('fanout') && !phases.has('durable')) return;
  if (db === 'postgres' && ctx.host.postgres) return;
  const label = `bare Socket.IO, storing (${DATABASE_LABEL[db]})`;
  await attempt(results, label, () =>
    withServer(
      () => storageFor(ctx, db),
      async ([storage]) => {
        await migrate(storage.env);
        return startBaseline('stored', placement(ctx), storage.env);
      },
      async (server) => {
        if (phases.has('fanout'))
          await attempt(results, `2 fan-out · ${label}`, async () => {
            results.stored.fanout[db] = await measureFanout(ctx, server, 'baseline');
          });
        if (phases.has('durable'))
          await attempt(results, `3 durable · ${label}`, async () => {
            results.stored.durable[db] = await measureDurable(ctx, server, 'baseline');
          });
      },
    ),
  );
}

async function benchBareWs(ctx: BenchContext, results: Results): Promise<void> {
  if (!ctx.config.phases.has('rawws') || !ctx.config.baselines.has('ws')) return;
  await attempt(results, '4 raw WebSocket · bare ws', () =>
    withServer(
      () => Promise.resolve([]),
      () => startBaseline('ws', placement(ctx)),
      async (server) => {
        results.rawWs.baseline = await measureRawWs(ctx, server, 'baseline');
      },
    ),
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

function writeJson(ctx: BenchContext, results: Results, table: string, startedAt: Date): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = join(RESULTS_DIR, `${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  const config: Omit<BenchConfig, 'phases' | 'baselines' | 'databases'> & {
    phases: string[];
    baselines: string[];
    databases: string[];
  } = {
    ...ctx.config,
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
    await benchBareSocketIo(ctx, results);
    await benchService(ctx, results, 'sqlite');
    await benchStoredSocketIo(ctx, results, 'sqlite');
    await benchService(ctx, results, 'postgres');
    await benchStoredSocketIo(ctx, results, 'postgres');
    await benchBareWs(ctx, results);
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
