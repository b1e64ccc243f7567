import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { sleep, waitUntil, withTimeout } from '../common/clock';
import { baselineAuthEnv } from './baseline-tokens';
import { perfNodeArgs } from './perf-record';
import { launch, profiling, type ManagedProcess } from './processes';
import { MIGRATE_ENTRY, REPO_ROOT, SERVICE_CWD, SERVICE_ENTRY, WEB_ROOT, scripts } from './paths';
import { waitUntilReady } from './service-api';

/** One server under test: one process (or one per node), and where it listens. */
export interface ServerHandle {
  label: string;
  urls: string[];
  processes: ManagedProcess[];
  /** The PostgreSQL it stores into, if any (its backends' CPU time is read apart, see `watchPostgres`). */
  postgresUrl?: string;
  stop(): Promise<void>;
}

export interface ServerPlacement {
  cpu: number;
  openFiles?: number;
  /** For `collectGarbage`. */
  inspect?: boolean;
}

const START_TIMEOUT_MS = 60_000;
/** How long to wait for `dist/src/main.js` while someone else rebuilds. */
const BUILD_WAIT_MS = 120_000;

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

const PASS_THROUGH = 'BENCH_SERVICE_';

/** `BENCH_SERVICE_<NAME>=value` in the bench's environment becomes `<NAME>=value` for the service. */
function passedThrough(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env))
    if (name.startsWith(PASS_THROUGH)) env[name.slice(PASS_THROUGH.length)] = value;
  return env;
}

/**
 * Settings for every service process: quiet, and limits far above what the
 * bench sends (the baselines have none), overridable with `BENCH_SERVICE_*`.
 */
export function serviceEnv(jwtSecret: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    JWT_SECRET: jwtSecret,
    LOG_LEVEL: 'warn',
    // Production's floor: a few users, registered before anything is measured.
    BCRYPT_ROUNDS: '10',
    // Every user registers at once (BENCH_USERS of them).
    PASSWORD_HASH_QUEUE_LIMIT: '10000',
    THROTTLE_AUTH_LIMIT: '1000000',
    THROTTLE_DEFAULT_LIMIT: '1000000',
    RATE_LIMIT_CHAT_MESSAGE: '1000000/1s',
    RATE_LIMIT_CHAT_JOIN: '1000000/1s',
    RATE_LIMIT_CONNECTIONS_PER_IP: '1000000/1s',
    MAX_SOCKETS_PER_USER: '100000',
    MAX_PACKETS_PER_SECOND: '1000000',
    SLOW_CONSUMER_LIMIT_BYTES: String(64 * 1024 * 1024),
    WS_PING_INTERVAL_MS: '25000',
    WEB_ROOT,
    // Room for the close graces and, on the two-node phase, two Redis timeouts.
    SHUTDOWN_TIMEOUT_MS: '10000',
    ...passedThrough(),
  };
}

export function newJwtSecret(): string {
  return randomBytes(20).toString('hex');
}

/** Every server process (service and baselines) profiles itself with `BENCH_CPU_PROF_DIR`, and names its frames for `perf` with `BENCH_PERF_DIR`. */
function profilingArgs(): string[] {
  const cpuProf = profiling()
    ? ['--cpu-prof', `--cpu-prof-dir=${resolve(process.env.BENCH_CPU_PROF_DIR ?? '.')}`]
    : [];
  return [...cpuProf, ...perfNodeArgs()];
}

function serviceCwd(): string {
  mkdirSync(SERVICE_CWD, { recursive: true });
  return SERVICE_CWD;
}

async function startServiceNode(
  name: string,
  env: NodeJS.ProcessEnv,
  placement: ServerPlacement,
): Promise<{ process: ManagedProcess; url: string }> {
  if (!(await waitUntil(() => existsSync(SERVICE_ENTRY), BUILD_WAIT_MS, 500)))
    throw new Error(`${SERVICE_ENTRY} is missing: run "npm run build"`);
  const port = await freePort();
  const child = launch({
    name,
    script: SERVICE_ENTRY,
    nodeArgs: profilingArgs(),
    env: { ...env, PORT: String(port) },
    cwd: serviceCwd(),
    ...placement,
  });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitUntilReady(url, () => child.isRunning(), START_TIMEOUT_MS);
  } catch (error) {
    await child.stop();
    throw new Error(
      `${name}: ${error instanceof Error ? error.message : String(error)}\n${child.output()}`,
    );
  }
  return { process: child, url };
}

/** Starts `nodes` processes of the built service with the same settings (one shared store). */
export async function startService(
  label: string,
  env: NodeJS.ProcessEnv,
  placement: ServerPlacement,
  nodes = 1,
): Promise<ServerHandle> {
  const started = await Promise.all(
    Array.from({ length: nodes }, (_, index) =>
      startServiceNode(`${label} #${index + 1}`, env, placement),
    ),
  );
  const processes = started.map((node) => node.process);
  return {
    label,
    urls: started.map((node) => node.url),
    processes,
    postgresUrl: env.DATABASE_URL,
    stop: async () => {
      await Promise.all(processes.map((child) => child.stop()));
    },
  };
}

export type BaselineKind = 'socketio' | 'ws' | 'stored';

const BASELINE: Record<BaselineKind, { label: string; script: string }> = {
  socketio: { label: 'bare Socket.IO', script: scripts.socketioBaseline },
  ws: { label: 'bare ws', script: scripts.wsBaseline },
  stored: { label: 'bare Socket.IO, storing', script: scripts.storedBaseline },
};

/** Creates the service's tables in `storage` with its own migration script. */
export async function migrate(storage: NodeJS.ProcessEnv): Promise<void> {
  const child = launch({
    name: 'migrate',
    script: MIGRATE_ENTRY,
    args: ['run'],
    env: { PATH: process.env.PATH, ...storage },
    cwd: serviceCwd(),
  });
  const exit = await child.exited;
  if (exit.code !== 0) throw new Error(`migrations failed: ${child.output()}`);
}

/**
 * Starts a bare baseline server and waits for its `listening` message; the
 * storing one gets `storage` (the variables the service would read).
 */
export async function startBaseline(
  kind: BaselineKind,
  placement: ServerPlacement,
  storage: NodeJS.ProcessEnv = {},
): Promise<ServerHandle> {
  const { label, script } = BASELINE[kind];
  const port = await freePort();
  const child = launch({
    name: label,
    script,
    nodeArgs: profilingArgs(),
    env: {
      PATH: process.env.PATH,
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      PORT: String(port),
      ...baselineAuthEnv(),
      ...storage,
    },
    cwd: REPO_ROOT,
    ipc: true,
    ...placement,
  });
  const listening = new Promise<void>((resolve) => child.child.once('message', () => resolve()));
  const died = child.exited.then((exit) => {
    throw new Error(`${label} exited (${exit.code ?? exit.signal}): ${child.output()}`);
  });
  try {
    await withTimeout(Promise.race([listening, died]), START_TIMEOUT_MS, `${label} did not listen`);
  } catch (error) {
    await child.stop();
    throw error;
  }
  await sleep(100);
  return {
    label,
    urls: [`http://127.0.0.1:${port}`],
    processes: [child],
    postgresUrl: storage.DATABASE_URL,
    stop: async () => {
      await child.stop();
    },
  };
}
