import { spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { DataSource } from 'typeorm';
import {
  REPO_ROOT,
  spawnService,
  waitUntilReady,
  type ServiceProcess,
} from '../support/service-process';
import { registerUser } from '../support/api';
import { runsUnderCi } from '../support/ci';
import { RawClient } from '../support/raw-ws';
import { connectSocket, emitAck, eventually, sleep } from '../support/sockets';
import { TcpProxy } from '../support/tcp-proxy';
import { freePort } from '../support/free-port';

async function breakRoomsTable(sqlitePath: string): Promise<void> {
  const db = await new DataSource({ type: 'better-sqlite3', database: sqlitePath }).initialize();
  try {
    await db.query('ALTER TABLE rooms RENAME TO rooms_gone');
  } finally {
    await db.destroy();
  }
}

const MIGRATE_ENTRY = join(REPO_ROOT, 'dist', 'src', 'database', 'migrate.js');
const USABLE_SECRET = 'k7Qe2xPz9LmV4rTb8NcW1yHd6JgF3sAu';

/** Running the service as PID 1 of a PID namespace takes root (unshare); CI has it. */
function canRunAsPid1(): boolean {
  if (process.getuid?.() === 0) return true;
  const message = 'unshare --pid needs root';
  if (runsUnderCi()) throw new Error(`${message} (required under CI)`);
  console.warn(`${message}; skipping the PID 1 start-up test.`);
  return false;
}

const itAsPid1 = canRunAsPid1() ? it : it.skip;

function onlyChildOf(pid: number): number {
  const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(' ');
  expect(children).toHaveLength(1);
  return Number(children[0]);
}

/** The built service as it runs in production: start-up checks, logs, shutdown. */
describe('service process', () => {
  let dir: string;
  const running: ServiceProcess[] = [];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'rt-proc-'));
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map((service) => service.stop('SIGKILL')));
    rmSync(dir, { recursive: true, force: true });
  });

  const start = async (env: Record<string, string>) => {
    const port = String(await freePort());
    const service = spawnService({
      HOST: '127.0.0.1',
      PORT: port,
      SQLITE_PATH: join(dir, 'data', 'app.sqlite'),
      ...env,
    });
    running.push(service);
    return service;
  };

  it.each([
    [{ PORT: 'eighty' }, 'PORT'],
    [{ HOST: '0.0.0.0:3000' }, 'HOST'],
    [{ WS_MAX_PAYLOAD_BYTES: '1048576' }, 'SLOW_CONSUMER_LIMIT_BYTES'],
    [{ NODE_ENV: 'staging' }, 'NODE_ENV'],
    [{ DATABASE_URL: 'mysql://localhost/x' }, 'DATABASE_URL'],
    [{ REDIS_URL: 'localhost:6379' }, 'REDIS_URL'],
    [{ JWT_EXPIRES_IN: 'soon' }, 'JWT_EXPIRES_IN'],
    [{ JWT_EXPIRES_IN: '0s' }, 'JWT_EXPIRES_IN'],
    [{ SSE_HEARTBEAT_MS: '2147483648' }, 'SSE_HEARTBEAT_MS'],
    [{ WS_PING_INTERVAL_MS: '2147483648' }, 'WS_PING_INTERVAL_MS'],
    [{ TRUST_PROXY: 'true' }, 'TRUST_PROXY'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
    [{ MIGRATIONS_RUN: 'maybe' }, 'MIGRATIONS_RUN'],
    [{ DATABASE_POOL_SIZE: '1' }, 'DATABASE_POOL_SIZE'],
    [{ NODE_ENV: 'production' }, 'JWT_SECRET'],
    [{ NODE_ENV: 'production', JWT_SECRET: 'short' }, 'JWT_SECRET'],
    [{ NODE_ENV: 'production', JWT_SECRET: 'a'.repeat(40) }, 'JWT_SECRET'],
    [{ REDIS_URL: 'redis://127.0.0.1:6379' }, 'JWT_SECRET'],
    [
      { NODE_ENV: 'production', JWT_SECRET: USABLE_SECRET, REDIS_URL: 'redis://127.0.0.1:6379' },
      'DATABASE_URL',
    ],
    [{ DATABASE_SCHEMA: 'chat' }, 'DATABASE_SCHEMA'],
  ])('refuses to start on %j, naming %s', async (env, variable) => {
    const service = await start(env);
    const { code } = await service.exited;
    expect(code).toBe(1);
    expect(service.output()).toContain('Invalid configuration');
    expect(service.output()).toContain(variable);
  });

  it.each([
    [{ REDIS_URL: 'redis://127.0.0.1:1', JWT_SECRET: USABLE_SECRET }, 'REDIS_URL'],
    [{ DATABASE_URL: 'postgres://postgres@127.0.0.1:1/test' }, 'DATABASE_URL'],
    [{ SQLITE_PATH: tmpdir() }, 'SQLITE_PATH'],
    [{ HOST: 'no-such-host.invalid' }, 'HOST'],
  ])(
    'stops when %j cannot be reached, naming %s in one line beside its JSON logs',
    async (env, variable) => {
      const service = await start(env);
      const { code } = await service.exited;
      expect(code).toBe(1);
      expect(service.errors().trim()).toMatch(
        new RegExp(`^Start-up failed: [^\n]*${variable}[^\n]*$`),
      );
      const logs = service.output().replace(service.errors(), '').trim().split('\n');
      for (const line of logs) expect(() => JSON.parse(line) as unknown).not.toThrow();
      expect(service.output()).not.toContain('LegacyRouteConverter');
    },
    40_000,
  );

  it('starts on embedded defaults: creates the SQLite file, applies migrations, serves', async () => {
    const service = await start({});
    await waitUntilReady(service);
    expect(existsSync(join(dir, 'data', 'app.sqlite'))).toBe(true);
    // The log lines come through a pipe, which the readiness answer can overtake.
    await eventually(() => service.output().includes('Applied migration InitialSchema'));
    expect(service.output()).toContain('Applied migration PartialClientMsgIdIndex');
    expect(service.output()).toContain('JWT_SECRET is not set');
    const { code } = await service.stop('SIGTERM');
    expect(code).toBe(0);
  });

  it('writes structured JSON logs with request ids and never a password or token', async () => {
    const service = await start({ LOG_LEVEL: 'info', JWT_SECRET: USABLE_SECRET });
    await waitUntilReady(service);
    const password = 'very-secret-password';
    await fetch(`${service.url}/api/auth/register`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username: 'logger', password }),
    });
    const login = await fetch(`${service.url}/api/auth/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Request-Id': 'req-login-1' },
      body: JSON.stringify({ username: 'logger', password }),
    });
    const { accessToken } = (await login.json()) as { accessToken: string };
    await fetch(`${service.url}/api/auth/me?token=${accessToken}`, {
      headers: { Authorization: `Bearer ${accessToken}` },
    });
    // Query tokens are where they are used: the event streams (and /ws, below).
    const streaming = new AbortController();
    const stream = await fetch(`${service.url}/api/events?token=${accessToken}`, {
      signal: streaming.signal,
    });
    expect(stream.status).toBe(200);
    streaming.abort();
    // A table that vanished under the service: an unexpected failure, logged with its request id.
    await breakRoomsTable(join(dir, 'data', 'app.sqlite'));
    const failed = await fetch(`${service.url}/api/rooms`, {
      headers: { Authorization: `Bearer ${accessToken}`, 'X-Request-Id': 'req-broken-1' },
    });
    expect(failed.status).toBe(500);
    // The contract's shape on every transport, with nothing of the SQL error in it.
    const internal = { code: 'INTERNAL', message: 'Internal server error', details: [] };
    expect(await failed.json()).toEqual(internal);
    const unknownRoom = '01a21548-0000-7000-8000-00000000beef';
    const socket = await connectSocket(service.url, accessToken);
    expect(await emitAck(socket, 'chat:join', unknownRoom)).toEqual({ ok: false, error: internal });
    socket.close();
    const raw = await RawClient.connect(service.url, accessToken);
    expect(await raw.request({ type: 'join', room: unknownRoom }, 'joined')).toEqual({
      type: 'error',
      ...internal,
      request: 'join',
      room: unknownRoom,
    });
    raw.close();
    await service.stop('SIGTERM');

    const lines = service.output().trim().split('\n');
    const entries = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    const loginEntry = entries.find(
      (entry) => (entry.req as { id?: string } | undefined)?.id === 'req-login-1',
    );
    expect(loginEntry).toMatchObject({
      level: 30,
      req: { method: 'POST', url: '/api/auth/login' },
      res: { statusCode: 200 },
    });
    const loggedUrls = entries.map((entry) => (entry.req as { url?: string } | undefined)?.url);
    expect(loggedUrls).toEqual(
      expect.arrayContaining([
        '/api/auth/me?token=%5Bredacted%5D',
        '/api/events?token=%5Bredacted%5D',
      ]),
    );
    const errorEntry = entries.find(
      (entry) =>
        entry.level === 50 && (entry.req as { id?: string } | undefined)?.id === 'req-broken-1',
    );
    expect(errorEntry).toMatchObject({
      context: 'HttpExceptionFilter',
      err: { message: expect.stringContaining('no such table') },
    });
    expect(service.output()).not.toContain(password);
    expect(service.output()).not.toContain(accessToken);
    expect(service.output()).not.toContain(accessToken.split('.')[2]);
  });

  it('reads a .env file in its working directory for every setting, the HTTP server’s too', async () => {
    const port = String(await freePort());
    writeFileSync(
      join(dir, '.env'),
      [
        `PORT=${port}`,
        'HOST=127.0.0.1',
        `SQLITE_PATH=${join(dir, 'app.sqlite')}`,
        'BODY_LIMIT_BYTES=2048',
      ].join('\n'),
    );
    // The port comes from the environment, which wins over the file: the test knows it.
    const service = spawnService({ PORT: port }, dir);
    running.push(service);
    await waitUntilReady(service);
    const response = await fetch(`${service.url}/api/auth/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ username: 'ada', password: 'x'.repeat(4096) }),
    });
    expect(response.status).toBe(413);
  });

  it('migrates from the command line, and names a bad setting without a stack trace', () => {
    const migrate = (env: Record<string, string>) =>
      spawnSync(process.execPath, [MIGRATE_ENTRY, 'run'], {
        env: { PATH: process.env.PATH, SQLITE_PATH: join(dir, 'app.sqlite'), ...env },
        encoding: 'utf8',
      });
    const done = migrate({});
    expect(done.status).toBe(0);
    expect(done.stdout).toContain('Applied');
    const refused = migrate({ PORT: 'abc' });
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain('PORT');
    expect(refused.stderr).not.toMatch(/\n\s+at /);
  });

  itAsPid1('ends at once on SIGTERM during start-up, also as PID 1 of a container', async () => {
    const service = spawnService(
      {
        HOST: '127.0.0.1',
        PORT: String(await freePort()),
        // Refused: start-up retries for seconds before it gives up.
        DATABASE_URL: 'postgres://postgres@127.0.0.1:1/test',
      },
      REPO_ROOT,
      { asPid1: true },
    );
    running.push(service);
    await eventually(() => service.output().includes('Retrying'), 20_000);

    const started = Date.now();
    process.kill(onlyChildOf(service.child.pid!), 'SIGTERM');
    const { code } = await service.exited;
    expect(code).toBe(143);
    // Start-up's retries would take far longer.
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(service.errors()).toContain('SIGTERM received during start-up');
  });

  it('ends at once on SIGTERM while its modules start, before it listens', async () => {
    // The hash an unknown name is compared against is made before listening: seconds at cost 15.
    const service = await start({ BCRYPT_ROUNDS: '15' });
    await eventually(() => service.output().includes('Mapped {'), 20_000);
    expect(service.output()).not.toContain('Listening on');

    service.child.kill('SIGTERM');
    const { code } = await service.exited;
    expect(code).toBe(143);
    expect(service.errors()).toContain('SIGTERM received during start-up');
  });

  it('stops at once, without retrying, when a migration fails', async () => {
    const first = await start({});
    await waitUntilReady(first);
    await first.stop('SIGTERM');
    // The record of a migration whose tables are there: applying it again fails.
    const database = new Database(join(dir, 'data', 'app.sqlite'));
    try {
      database.prepare("DELETE FROM migrations WHERE name LIKE 'InitialSchema%'").run();
    } finally {
      database.close();
    }

    const second = await start({});
    const { code } = await second.exited;
    expect(code).toBe(1);
    expect(second.errors()).toMatch(/^Start-up failed: A migration failed: /m);
    expect(second.output()).not.toContain('Retrying');
  });

  it('drains and exits 0 on SIGTERM', async () => {
    const service = await start({});
    await waitUntilReady(service);
    const started = Date.now();
    const { code } = await service.stop('SIGTERM');
    expect(code).toBe(0);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(service.output()).toContain('SIGTERM received');
  });

  it('cuts a request still under way once its share of the shutdown is over, and exits 0 in time', async () => {
    const service = await start({ SHUTDOWN_TIMEOUT_MS: '8000' });
    await waitUntilReady(service);
    // A body that never arrives in full: Node would wait for it for minutes.
    const client = connect(Number(new URL(service.url).port), '127.0.0.1');
    const cut = new Promise<void>((resolve) => client.once('close', () => resolve()));
    client.on('error', () => undefined);
    client.write(
      'POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
        'Content-Length: 100\r\n\r\n{"username":',
    );
    // Headers that never come in full: no request yet, and Node would wait a minute for them.
    const headersOnly = connect(Number(new URL(service.url).port), '127.0.0.1');
    const headersCut = new Promise<void>((resolve) => headersOnly.once('close', () => resolve()));
    headersOnly.on('error', () => undefined);
    headersOnly.write('GET /api/rooms HTTP/1.1\r\nHost: x\r\n');
    await sleep(300);

    const started = Date.now();
    const { code } = await service.stop('SIGTERM');

    expect(code).toBe(0);
    expect(Date.now() - started).toBeLessThan(8_000);
    await Promise.all([cut, headersCut]);
    expect(service.output()).toContain('Cut 1 request(s)');
  });

  it('finishes its shutdown, exit 0, when a second signal comes during it', async () => {
    const service = await start({});
    await waitUntilReady(service);
    const proxy = await TcpProxy.start('127.0.0.1', Number(new URL(service.url).port));
    try {
      const user = await registerUser(service.url);
      // A client gone without a word keeps the shutdown busy for its grace.
      const socket = await connectSocket(`http://127.0.0.1:${proxy.port}`, user.token);
      proxy.stallOpenConnections();

      service.child.kill('SIGTERM');
      await eventually(() => service.output().includes('SIGTERM received'));
      const { code, signal } = await service.stop('SIGTERM');

      expect({ code, signal }).toEqual({ code: 0, signal: null });
      socket.close();
    } finally {
      await proxy.cut();
    }
  });
});
