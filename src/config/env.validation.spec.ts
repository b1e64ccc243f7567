import { InvalidConfigurationError, validateEnvironment } from './env.validation';
import { usableCores } from './usable-cores';

/** setTimeout's largest delay; above it Node fires after 1 ms. */
const NODE_TIMER_LIMIT_MS = 2 ** 31 - 1;

const refusal = (env: Record<string, string>): string => {
  try {
    validateEnvironment(env);
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidConfigurationError);
    return (error as Error).message;
  }
  throw new Error(`${JSON.stringify(env)} was accepted`);
};

describe('JWT_EXPIRES_IN', () => {
  it.each(['1m', '60', '3600', '15m', '1h', '7d', '30d'])('accepts %s', (value) =>
    expect(validateEnvironment({ JWT_EXPIRES_IN: value }).JWT_EXPIRES_IN).toBe(value),
  );

  it.each(['0', '0s', '0h', '0d', '59', '59s', '31d', '745h', '99999999999d'])(
    'refuses %s, a lifetime under a minute or over 30 days',
    (value) =>
      expect(refusal({ JWT_EXPIRES_IN: value })).toMatch(
        /JWT_EXPIRES_IN: JWT_EXPIRES_IN must be from 1m to 30d/,
      ),
  );

  it('names only the format when the value is no duration at all', () => {
    expect(refusal({ JWT_EXPIRES_IN: 'soon' })).toBe(
      'Invalid configuration:\n  JWT_EXPIRES_IN: JWT_EXPIRES_IN must be a duration like 3600, 15m or 1h',
    );
  });
});

describe('settings that end up in a timer', () => {
  const TIMER_SETTINGS = [
    'WS_PING_INTERVAL_MS',
    'WS_PING_TIMEOUT_MS',
    'SSE_HEARTBEAT_MS',
    'PRESENCE_TTL_MS',
    'SHUTDOWN_TIMEOUT_MS',
  ];

  it.each(TIMER_SETTINGS)('%s accepts ten minutes', (name) =>
    expect(validateEnvironment({ [name]: '600000' })).toMatchObject({ [name]: 600_000 }),
  );

  it.each(TIMER_SETTINGS)('%s refuses more than ten minutes', (name) =>
    expect(refusal({ [name]: '600001' })).toContain(
      `${name}: ${name} must not be greater than 600000`,
    ),
  );

  it.each(TIMER_SETTINGS)('%s refuses what Node would clamp to 1 ms', (name) =>
    expect(refusal({ [name]: String(NODE_TIMER_LIMIT_MS + 1) })).toContain(name),
  );
});

describe('SHUTDOWN_TIMEOUT_MS', () => {
  it('accepts room for the close graces', () =>
    expect(validateEnvironment({ SHUTDOWN_TIMEOUT_MS: '6000' })).toMatchObject({
      SHUTDOWN_TIMEOUT_MS: 6_000,
    }));

  it('refuses a timeout that would cut the close graces, naming them', () =>
    expect(refusal({ SHUTDOWN_TIMEOUT_MS: '5999' })).toMatch(
      /SHUTDOWN_TIMEOUT_MS must be at least 6000: clients get 2000 ms to close .* 5000 ms/,
    ));
});

describe('throttle windows', () => {
  it.each(['THROTTLE_DEFAULT_TTL_MS', 'THROTTLE_AUTH_TTL_MS'])(
    '%s accepts a day and refuses more',
    (name) => {
      expect(validateEnvironment({ [name]: '86400000' })).toMatchObject({ [name]: 86_400_000 });
      expect(refusal({ [name]: '86400001' })).toContain(
        `${name}: ${name} must not be greater than 86400000`,
      );
    },
  );
});

describe('MAX_ROOMS_PER_CONNECTION', () => {
  it('accepts a thousand rooms and refuses more: each is a packet more at the start', () => {
    expect(
      validateEnvironment({ MAX_ROOMS_PER_CONNECTION: '1000', RATE_LIMIT_CHAT_JOIN: '1000/60s' }),
    ).toMatchObject({ MAX_ROOMS_PER_CONNECTION: 1000 });
    expect(refusal({ MAX_ROOMS_PER_CONNECTION: '1001' })).toContain(
      'MAX_ROOMS_PER_CONNECTION: MAX_ROOMS_PER_CONNECTION must not be greater than 1000',
    );
  });
});

describe('JWT_SESSION_MAX_AGE', () => {
  it.each(['1m', '12h', '30d', '365d'])('accepts %s', (value) =>
    expect(
      validateEnvironment({ JWT_SESSION_MAX_AGE: value, JWT_EXPIRES_IN: '1m' }).JWT_SESSION_MAX_AGE,
    ).toBe(value),
  );

  it.each(['0', '59s', '366d', 'forever'])('refuses %s', (value) =>
    expect(refusal({ JWT_SESSION_MAX_AGE: value })).toContain('JWT_SESSION_MAX_AGE: '),
  );

  it('refuses a session shorter than the token it starts with', () =>
    expect(refusal({ JWT_SESSION_MAX_AGE: '30m', JWT_EXPIRES_IN: '1h' })).toBe(
      "Invalid configuration:\n  JWT_SESSION_MAX_AGE: 30m is shorter than one token's lifetime (JWT_EXPIRES_IN=1h)",
    ));
});

describe('settings that must fit together', () => {
  it('refuses a join budget smaller than the rooms a connection may hold, naming both', () => {
    expect(validateEnvironment({ RATE_LIMIT_CHAT_JOIN: '100/60s' }).MAX_ROOMS_PER_CONNECTION).toBe(
      100,
    );
    expect(refusal({ RATE_LIMIT_CHAT_JOIN: '99/60s' })).toBe(
      'Invalid configuration:\n  RATE_LIMIT_CHAT_JOIN: allows 99 joins a window, fewer than ' +
        'MAX_ROOMS_PER_CONNECTION (100): a client coming back could not rejoin every room it held',
    );
    expect(refusal({ MAX_ROOMS_PER_CONNECTION: '500' })).toContain(
      'RATE_LIMIT_CHAT_JOIN: allows 300',
    );
  });

  it('refuses more join members than half the slow-consumer limit holds at the longest names', () => {
    // Unset, the default applies with any limit, as it did before it was a setting.
    expect(validateEnvironment({ SLOW_CONSUMER_LIMIT_BYTES: '131072' }).JOIN_MEMBERS_LIMIT).toBe(
      undefined,
    );
    expect(refusal({ SLOW_CONSUMER_LIMIT_BYTES: '131072', JOIN_MEMBERS_LIMIT: '1000' })).toContain(
      'JOIN_MEMBERS_LIMIT: at most 712 with SLOW_CONSUMER_LIMIT_BYTES=131072',
    );
    // {"id":"<36>","username":"<32>"} and a comma: 92 bytes; half of 1 MiB holds 5698.
    expect(validateEnvironment({ JOIN_MEMBERS_LIMIT: '5698' }).JOIN_MEMBERS_LIMIT).toBe(5698);
    expect(refusal({ JOIN_MEMBERS_LIMIT: '5699' })).toBe(
      'Invalid configuration:\n  JOIN_MEMBERS_LIMIT: at most 5698 with SLOW_CONSUMER_LIMIT_BYTES=' +
        "1048576: a join's answer may take half of that, and 5699 members of the longest names " +
        'would not fit, so a client on a slow link would be dropped as a slow consumer on every ' +
        'join; raise both together',
    );
    expect(
      validateEnvironment({ JOIN_MEMBERS_LIMIT: '20000', SLOW_CONSUMER_LIMIT_BYTES: '3680000' })
        .JOIN_MEMBERS_LIMIT,
    ).toBe(20000);
    for (const value of ['0', '-1', '1.5', 'all'])
      expect(refusal({ JOIN_MEMBERS_LIMIT: value })).toContain('JOIN_MEMBERS_LIMIT: ');
  });

  it('refuses, with Redis, a shutdown timeout a stalled Redis would outlast', () => {
    const withRedis = {
      REDIS_URL: 'redis://redis:6379',
      JWT_SECRET: 'a-secret-shared-by-every-node-0123456789',
    };
    expect(validateEnvironment(withRedis).SHUTDOWN_TIMEOUT_MS).toBe(10_000);
    expect(
      validateEnvironment({
        ...withRedis,
        REDIS_COMMAND_TIMEOUT_MS: '10000',
        SHUTDOWN_TIMEOUT_MS: '26000',
      }).SHUTDOWN_TIMEOUT_MS,
    ).toBe(26_000);
    expect(refusal({ ...withRedis, REDIS_COMMAND_TIMEOUT_MS: '10000' })).toMatch(
      /SHUTDOWN_TIMEOUT_MS: must be at least 26000 with REDIS_COMMAND_TIMEOUT_MS=10000: 6000 ms for the clients, then a stalled Redis is waited on twice/,
    );
    // Without Redis nothing waits on it.
    expect(validateEnvironment({ REDIS_COMMAND_TIMEOUT_MS: '10000' }).SHUTDOWN_TIMEOUT_MS).toBe(
      10_000,
    );
  });
});

describe('integer settings', () => {
  it.each(['MAX_SOCKETS_PER_USER', 'THROTTLE_DEFAULT_LIMIT', 'MAX_PACKETS_PER_SECOND'])(
    '%s refuses a number too large to hold exactly, rather than reading it as unlimited',
    (name) =>
      expect(refusal({ [name]: '999999999999999999999999' })).toContain(
        `must be an integer number`,
      ),
  );
});

describe('REDIS_COMMAND_TIMEOUT_MS', () => {
  it('accepts ten seconds and refuses more: openings that wait a minute are refused', () => {
    expect(validateEnvironment({ REDIS_COMMAND_TIMEOUT_MS: '10000' })).toMatchObject({
      REDIS_COMMAND_TIMEOUT_MS: 10_000,
    });
    expect(refusal({ REDIS_COMMAND_TIMEOUT_MS: '10001' })).toContain(
      'REDIS_COMMAND_TIMEOUT_MS: REDIS_COMMAND_TIMEOUT_MS must not be greater than 10000',
    );
  });
});

describe('password hashing threads', () => {
  it('keeps a core for the event loop by default, and at least one thread', () => {
    const threads = validateEnvironment({}).PASSWORD_HASH_THREADS;
    expect(threads).toBe(Math.min(4, Math.max(1, usableCores() - 1)));
  });

  it.each([
    ['PASSWORD_HASH_THREADS', '0'],
    ['PASSWORD_HASH_THREADS', 'two'],
    ['PASSWORD_HASH_QUEUE_LIMIT', '0'],
    ['PASSWORD_HASH_QUEUE_LIMIT', '-5'],
  ])('refuses %s=%s', (name, value) => expect(refusal({ [name]: value })).toContain(name));
});
