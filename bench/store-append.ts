import { join } from 'node:path';
import { postgresReachable, postgresStorage, sqliteStorage, type Storage } from './lib/databases';
import { REPO_ROOT } from './lib/paths';

/**
 * The CPU cost of one durable append on its own: the service's MessageStore,
 * in this process, one message at a time, as at a low fixed rate where no
 * group commit forms. `npm run bench:store` (after `npm run build`).
 */

const WARMUP = 2_000;
const MEASURED = 3_000;

interface Service {
  init(): Promise<unknown>;
  close(): Promise<void>;
  get<T>(token: unknown): T;
}
type Append = (input: Record<string, string>) => Promise<unknown>;

/** The built service's own modules (`npm run build`), not a copy compiled here. */
async function serviceModule<T>(path: string): Promise<T> {
  return (await import(join(REPO_ROOT, 'dist', 'src', `${path}.js`))) as T;
}

async function startService(storage: Storage): Promise<Service> {
  const { createApp } = await serviceModule<{ createApp: (env: object) => Promise<Service> }>(
    'app.factory',
  );
  const app = await createApp({
    NODE_ENV: 'production',
    JWT_SECRET: 'bench-secret-of-sufficient-length-0123456789',
    LOG_LEVEL: 'warn',
    MIGRATIONS_RUN: 'true',
    ...storage.env,
  });
  await app.init();
  return app;
}

async function appendCost(storage: Storage): Promise<string> {
  try {
    return await measureAppends(storage);
  } finally {
    await storage.drop();
  }
}

async function measureAppends(storage: Storage): Promise<string> {
  const app = await startService(storage);
  try {
    const { UsersService } = await serviceModule<{ UsersService: unknown }>('users/users.service');
    const { RoomsService } = await serviceModule<{ RoomsService: unknown }>('rooms/rooms.service');
    const { MessageStore } = await serviceModule<{ MessageStore: unknown }>(
      'messages/message-store.service',
    );
    const users = app.get<{ create(u: object): Promise<{ id: string }> }>(UsersService);
    const rooms = app.get<{ create(owner: string, r: object): Promise<{ id: string }> }>(
      RoomsService,
    );
    const store = app.get<{ append: Append }>(MessageStore);
    const user = await users.create({ username: `bench${Date.now()}`, passwordHash: 'x' });
    const room = await rooms.create(user.id, { name: `bench ${Date.now()}`, isPrivate: false });
    const append = () =>
      store.append({ roomId: room.id, userId: user.id, username: 'bench', text: 'x'.repeat(100) });
    for (let i = 0; i < WARMUP; i += 1) await append();
    const [cpu0, wall0] = [process.cpuUsage(), performance.now()];
    for (let i = 0; i < MEASURED; i += 1) await append();
    const cpu = process.cpuUsage(cpu0);
    const wallUs = ((performance.now() - wall0) * 1000) / MEASURED;
    const cpuUs = (cpu.user + cpu.system) / MEASURED;
    return `${storage.label.padEnd(10)} ${cpuUs.toFixed(0).padStart(5)} µs CPU, ${wallUs.toFixed(0).padStart(5)} µs wall per append`;
  } finally {
    await app.close();
  }
}

async function main(): Promise<void> {
  console.log(`one append at a time, ${MEASURED} measured after ${WARMUP} (service process CPU)`);
  console.log(await appendCost(sqliteStorage()));
  const url = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  const unreachable = await postgresReachable(url);
  if (unreachable) console.log(`PostgreSQL skipped: ${unreachable}`);
  else console.log(await appendCost(await postgresStorage(url)));
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
