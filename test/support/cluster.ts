import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createClient } from 'redis';
import type { RawEnvironment } from '@app/config/env.validation';
import { withPostgres } from './databases';
import { spawnService, waitUntilReady, type ServiceProcess } from './service-process';
import { TEST_JWT_SECRET } from './test-app';
import { freePort } from './free-port';

/** Settings of every node of a test cluster: quick presence expiry, generous limits, quiet logs. */
export const CLUSTER_ENV: RawEnvironment = {
  NODE_ENV: 'test',
  HOST: '127.0.0.1',
  JWT_SECRET: TEST_JWT_SECRET,
  LOG_LEVEL: 'warn',
  BCRYPT_ROUNDS: '4',
  THROTTLE_AUTH_LIMIT: '100000',
  THROTTLE_DEFAULT_LIMIT: '100000',
  MAX_PACKETS_PER_SECOND: '100000',
  RATE_LIMIT_CHAT_MESSAGE: '100000/10s',
  RATE_LIMIT_USER_LOOKUP: '100000/60s',
  RATE_LIMIT_ROOM_INVITE: '100000/60s',
  RATE_LIMIT_LOGIN_PER_ACCOUNT: '100000/60s',
  RATE_LIMIT_CHAT_JOIN: '100000/60s',
  RATE_LIMIT_CONNECTIONS_PER_IP: '100000/60s',
  PRESENCE_TTL_MS: '3000',
  SHUTDOWN_TIMEOUT_MS: '10000',
};

export function clusterServicesAvailable(): boolean {
  return Boolean(process.env.DATABASE_URL && process.env.REDIS_URL);
}

/** One node of a cluster: restartable on its port. */
export class ClusterNode {
  process: ServiceProcess;

  constructor(
    readonly port: number,
    private readonly env: RawEnvironment,
  ) {
    this.process = spawnService({ ...env, PORT: String(port) });
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  ready(): Promise<void> {
    return waitUntilReady(this.process, 30_000);
  }

  async restart(): Promise<void> {
    this.process = spawnService({ ...this.env, PORT: String(this.port) });
    await this.ready();
  }

  kill(signal: NodeJS.Signals = 'SIGKILL') {
    return this.process.stop(signal);
  }
}

/** Several processes of the built service sharing one PostgreSQL schema and one Redis prefix. */
export class Cluster {
  private constructor(
    readonly nodes: ClusterNode[],
    readonly schema: string,
  ) {}

  static async start(size: number, overrides: RawEnvironment = {}): Promise<Cluster> {
    const schema = `mn_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
    await withPostgres((client) => client.query(`CREATE SCHEMA "${schema}"`));
    const env: RawEnvironment = {
      ...CLUSTER_ENV,
      DATABASE_URL: process.env.DATABASE_URL,
      DATABASE_SCHEMA: schema,
      REDIS_URL: process.env.REDIS_URL,
      REDIS_KEY_PREFIX: `${schema}:`,
      ...overrides,
    };
    const ports = await Promise.all(Array.from({ length: size }, () => freePort()));
    const cluster = new Cluster(
      ports.map((port) => new ClusterNode(port, env)),
      schema,
    );
    try {
      await Promise.all(cluster.nodes.map((node) => node.ready()));
    } catch (error) {
      // The caller gets no cluster to stop: the nodes that did start must not outlive the test.
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.kill('SIGKILL')));
    await withPostgres((client) => client.query(`DROP SCHEMA IF EXISTS "${this.schema}" CASCADE`));
    await deleteRedisKeys(`${this.schema}:`);
  }
}

/**
 * The keys a cluster left in the shared Redis: killed nodes leave presence
 * sets that have no expiry, which would pile up from run to run.
 */
async function deleteRedisKeys(prefix: string): Promise<void> {
  const client = createClient({ url: process.env.REDIS_URL });
  client.on('error', () => undefined);
  await client.connect();
  try {
    for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 500 }))
      if (keys.length > 0) await client.del(keys);
  } finally {
    await client.close();
  }
}

/** A Redis server of the test's own, which the test may stop and start again. */
export class OwnRedis {
  private child?: ChildProcess;

  private constructor(readonly port: number) {}

  static async start(): Promise<OwnRedis> {
    const redis = new OwnRedis(await freePort());
    try {
      await redis.resume();
    } catch (error) {
      // Never handed to the caller, who could not halt it.
      await redis.halt();
      throw error;
    }
    return redis;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async resume(): Promise<void> {
    this.child = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      {
        stdio: 'ignore',
      },
    );
    await waitForPort(this.port);
  }

  async halt(): Promise<void> {
    const child = this.child;
    // Killed before, it has a signal and no exit code: its 'exit' will not come again.
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise((resolve) => {
      child.once('exit', resolve);
      child.kill('SIGKILL');
    });
  }
}

async function waitForPort(port: number, timeoutMs = 10_000): Promise<void> {
  const { connect } = await import('node:net');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`Nothing listens on ${port}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
