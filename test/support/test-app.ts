import type { NestExpressApplication } from '@nestjs/platform-express';
import { createApp } from '@app/app.factory';
import type { RawEnvironment } from '@app/config/env.validation';
import { createTestDatabase, type DatabaseKind, type TestDatabase } from './databases';

export const TEST_JWT_SECRET = 'test-secret-that-is-long-enough-for-hs256-0123456789';

/** Settings every test app shares: fast hashing, generous limits (tests of a limit set it), quiet logs. */
export const BASE_TEST_ENV: RawEnvironment = {
  NODE_ENV: 'test',
  PORT: '0',
  HOST: '127.0.0.1',
  JWT_SECRET: TEST_JWT_SECRET,
  LOG_LEVEL: 'silent',
  BCRYPT_ROUNDS: '4',
  THROTTLE_AUTH_LIMIT: '100000',
  THROTTLE_DEFAULT_LIMIT: '100000',
  MAX_PACKETS_PER_SECOND: '100000',
  RATE_LIMIT_CHAT_MESSAGE: '100000/10s',
  RATE_LIMIT_USER_LOOKUP: '100000/60s',
  RATE_LIMIT_ROOM_INVITE: '100000/60s',
  RATE_LIMIT_LOGIN_PER_ACCOUNT: '100000/60s',
};

export interface TestApp {
  app: NestExpressApplication;
  url: string;
  database: TestDatabase;
  close(): Promise<void>;
}

/** The whole service, listening on a free port, on a fresh database of the given kind. */
export async function startTestApp(
  kind: DatabaseKind,
  overrides: RawEnvironment = {},
): Promise<TestApp> {
  const database = await createTestDatabase(kind);
  const app = await createApp({ ...BASE_TEST_ENV, ...database.env, ...overrides });
  await app.listen(0, '127.0.0.1');
  const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
  return {
    app,
    url,
    database,
    close: async () => {
      await app.close();
      await database.drop();
    },
  };
}
