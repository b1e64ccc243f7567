import { loadConfig } from './app-config';
import { parseDuration, parseRate } from './duration';
import { InvalidConfigurationError } from './env.validation';

const SECRET = 'k7Qe2xPz9LmV4rTb8NcW1yHd6JgF3sAu';

describe('loadConfig', () => {
  it('applies the embedded defaults', () => {
    const config = loadConfig({});
    expect(config.http).toMatchObject({
      port: 3000,
      nodeEnv: 'development',
      corsOrigins: [],
      bodyLimitBytes: 1048576,
    });
    expect(config.database).toMatchObject({
      type: 'better-sqlite3',
      synchronous: 'full',
      migrationsRun: true,
    });
    expect(config.database.type === 'better-sqlite3' && config.database.path).toMatch(
      /data\/app\.sqlite$/,
    );
    expect(config.auth).toMatchObject({ jwtSecretGenerated: true, jwtExpiresInSeconds: 3600 });
    expect(config.auth.jwtSecret.length).toBeGreaterThanOrEqual(32);
    expect(config.realtime.rates.message).toEqual({ limit: 20, windowMs: 10_000 });
    expect(config.realtime).toMatchObject({
      pingIntervalMs: 25_000,
      pingTimeoutMs: 20_000,
      maxPayloadBytes: 65_536,
    });
  });

  it('reads PostgreSQL, Redis and lists', () => {
    const config = loadConfig({
      DATABASE_URL: 'postgres://u@db:5432/app',
      DATABASE_SCHEMA: 'tenant_a',
      REDIS_URL: 'redis://cache:6379',
      JWT_SECRET: SECRET,
      CORS_ORIGINS: 'https://a.example, https://b.example',
      MIGRATIONS_RUN: 'false',
    });
    expect(config.database).toEqual({
      type: 'postgres',
      url: 'postgres://u@db:5432/app',
      schema: 'tenant_a',
      poolSize: 10,
      queryTimeoutMs: 30_000,
      migrationsRun: false,
    });
    expect(config.redis.url).toBe('redis://cache:6379');
    expect(config.http.corsOrigins).toEqual(['https://a.example', 'https://b.example']);
  });

  it('requires a usable JWT_SECRET in production, and wherever nodes share Redis', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/JWT_SECRET is required/);
    expect(() => loadConfig({ REDIS_URL: 'redis://cache:6379' })).toThrow(/JWT_SECRET is required/);
    for (const weak of ['short', ' '.repeat(32), 'a'.repeat(32), ` ${SECRET}`, 'abab'.repeat(8)])
      expect(() => loadConfig({ NODE_ENV: 'production', JWT_SECRET: weak })).toThrow(
        /JWT_SECRET must be at least 32 characters long/,
      );
    expect(loadConfig({ NODE_ENV: 'production', JWT_SECRET: SECRET }).auth.jwtSecretGenerated).toBe(
      false,
    );
    expect(loadConfig({}).auth.jwtSecretGenerated).toBe(true);
  });

  it('refuses settings that leave a node on a database of its own, or where nothing looks for it', () => {
    const production = { NODE_ENV: 'production', JWT_SECRET: SECRET };
    const redis = { REDIS_URL: 'redis://127.0.0.1:6379' };
    const postgres = { DATABASE_URL: 'postgres://app@db:5432/chat' };
    expect(() => loadConfig({ ...production, ...redis })).toThrow(
      /DATABASE_URL: required when NODE_ENV=production and REDIS_URL is set/,
    );
    expect(loadConfig({ ...production, ...redis, ...postgres }).database.type).toBe('postgres');
    // Trying the Redis adapter on one development node, with SQLite, stays possible.
    expect(loadConfig({ JWT_SECRET: SECRET, ...redis }).database.type).toBe('better-sqlite3');

    expect(() => loadConfig({ DATABASE_SCHEMA: 'chat' })).toThrow(
      /DATABASE_SCHEMA: applies to PostgreSQL only/,
    );
    expect(loadConfig({ ...postgres, DATABASE_SCHEMA: 'chat' }).database).toMatchObject({
      schema: 'chat',
    });

    expect(() => loadConfig({ ...production, PORT: '0' })).toThrow(/PORT: 0 .* is for tests/);
    expect(loadConfig({ NODE_ENV: 'test', PORT: '0' }).http.port).toBe(0);

    expect(() => loadConfig({ ...production, BCRYPT_ROUNDS: '9' })).toThrow(
      /BCRYPT_ROUNDS: 9 is for tests; NODE_ENV=production needs at least 10/,
    );
    expect(loadConfig({ ...production, BCRYPT_ROUNDS: '10' }).auth.bcryptRounds).toBe(10);
    expect(loadConfig({ NODE_ENV: 'test', BCRYPT_ROUNDS: '4' }).auth.bcryptRounds).toBe(4);
  });

  it('names every bad variable at once', () => {
    let error: unknown;
    try {
      loadConfig({
        PORT: '70000',
        RATE_LIMIT_CHAT_MESSAGE: '0/10s',
        DATABASE_SCHEMA: 'Robert"); DROP',
      });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(InvalidConfigurationError);
    const message = (error as Error).message;
    for (const name of ['PORT', 'RATE_LIMIT_CHAT_MESSAGE', 'DATABASE_SCHEMA'])
      expect(message).toContain(name);
  });

  it.each([
    ['RATE_LIMIT_CHAT_JOIN', '20/3000000000000h'],
    ['RATE_LIMIT_CONNECTIONS_PER_IP', '99999999999999999999/1s'],
    ['DATABASE_SCHEMA', 'pg_chat'],
  ])('refuses %s=%s, which would fail only at run time', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(name);
  });

  it('takes a rate window of a day at most', () => {
    expect(loadConfig({ RATE_LIMIT_CHAT_JOIN: '300/24h' }).realtime.rates.join).toEqual({
      limit: 300,
      windowMs: 86_400_000,
    });
  });

  it('listens on an IP address or a host name, never on something with a port', () => {
    for (const host of ['0.0.0.0', '::', '127.0.0.1', 'localhost', 'app.internal'])
      expect(loadConfig({ HOST: host }).http.host).toBe(host);
    for (const host of ['0.0.0.0:3000', 'http://localhost', 'a host', '[::1]'])
      expect(() => loadConfig({ HOST: host })).toThrow(/HOST must be an IP address or a host name/);
  });

  it('answers joins with 1000 members unless JOIN_MEMBERS_LIMIT says otherwise', () => {
    expect(loadConfig({}).realtime.joinMembersLimit).toBe(1000);
    expect(loadConfig({ JOIN_MEMBERS_LIMIT: '5000' }).realtime.joinMembersLimit).toBe(5000);
  });

  it('keeps room for two messages of the largest size in what a client may leave unread', () => {
    expect(() =>
      loadConfig({ WS_MAX_PAYLOAD_BYTES: '1048576', SLOW_CONSUMER_LIMIT_BYTES: '2097151' }),
    ).toThrow(/SLOW_CONSUMER_LIMIT_BYTES: must be at least 2097152, twice WS_MAX_PAYLOAD_BYTES/);
    expect(
      loadConfig({ WS_MAX_PAYLOAD_BYTES: '1048576', SLOW_CONSUMER_LIMIT_BYTES: '2097152' }).realtime
        .slowConsumerLimitBytes,
    ).toBe(2097152);
  });

  it('gives the sends in flight at a shutdown what the timeout leaves after the rest', () => {
    expect(loadConfig({}).http.finishSendsWithinMs).toBe(10_000 - 6_000);
    const redis = { REDIS_URL: 'redis://cache:6379', JWT_SECRET: SECRET };
    expect(
      loadConfig({ ...redis, SHUTDOWN_TIMEOUT_MS: '20000', REDIS_COMMAND_TIMEOUT_MS: '2000' }).http
        .finishSendsWithinMs,
    ).toBe(20_000 - 6_000 - 2 * 2_000);
    expect(loadConfig({ SHUTDOWN_TIMEOUT_MS: '6000' }).http.finishSendsWithinMs).toBe(1_000);
  });

  it('treats empty values as unset', () => {
    expect(loadConfig({ PORT: '', REDIS_URL: '' }).http.port).toBe(3000);
  });
});

describe('durations and rates', () => {
  it.each([
    ['3600', 3600],
    ['90s', 90],
    ['15m', 900],
    ['1h', 3600],
    ['7d', 604800],
  ])('parses %s', (value, seconds) => expect(parseDuration(value)).toBe(seconds));

  it.each([
    ['20/10s', { limit: 20, windowMs: 10_000 }],
    ['5/1', { limit: 5, windowMs: 1000 }],
    ['100/500ms', { limit: 100, windowMs: 500 }],
    ['30/1m', { limit: 30, windowMs: 60_000 }],
  ])('parses the rate %s', (value, rate) => expect(parseRate(value)).toEqual(rate));

  it.each(['0/1s', '1/0', 'x/1', '1h'])('refuses the rate %s', (value) =>
    expect(() => parseRate(value)).toThrow(),
  );
});
