import { plainToInstance, Transform } from 'class-transformer';
import {
  isFQDN,
  isIP,
  IsBoolean,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  Matches,
  Max,
  MaxLength,
  Min,
  MinLength,
  ValidateBy,
  ValidateIf,
  validateSync,
  type ValidationOptions,
} from 'class-validator';
import { parseDuration, parseRate } from './duration';
import { parseCorsOrigins } from './cors-origins';
import { parseTrustProxy } from './trust-proxy';
import { usableCores } from './usable-cores';
import { SHUTDOWN_GRACES } from '@app/common/shutdown-graces';
import {
  DEFAULT_MAX_PAYLOAD_BYTES,
  JOIN_ANSWER_SHARE_OF_SLOW_CONSUMER_LIMIT,
  MAX_MEMBER_SUMMARY_JSON_BYTES,
} from '@app/contract/limits';

export const NODE_ENVS = ['development', 'production', 'test'] as const;
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const SQLITE_SYNCHRONOUS_MODES = ['full', 'normal'] as const;

/** An integer setting; one past what a number holds exactly is left as text, and refused. */
const toInt = ({ value }: { value: unknown }) =>
  typeof value === 'string' && /^-?\d+$/.test(value.trim()) && Number.isSafeInteger(Number(value))
    ? Number(value)
    : value;

const toBool = ({ value }: { value: unknown }) => {
  if (typeof value !== 'string') return value;
  const normalized = value.trim().toLowerCase();
  if (['true', '1', 'yes'].includes(normalized)) return true;
  if (['false', '0', 'no'].includes(normalized)) return false;
  return value;
};

/** A rate such as `20/10s`: at most 20 per 10 seconds. */
export const RATE_PATTERN = /^[1-9]\d*\/[1-9]\d*(ms|s|m|h)?$/;

/** A duration such as `3600`, `90s`, `15m`, `1h` or `7d`. */
export const DURATION_PATTERN = /^\d+(s|m|h|d)?$/;

/** Long enough to log in and then connect; short enough that a leaked token does not serve for months. */
const JWT_LIFETIME = { min: '1m', max: '30d' };

/** How long refreshing may keep one login's session going. */
const SESSION_LIFETIME = { min: '1m', max: '365d' };

/**
 * The longest interval or timeout a setting may ask for. Node fires any
 * timer above 2^31-1 ms after 1 ms; far below that, ten minutes is already
 * longer than any heartbeat or grace period worth having.
 */
export const MAX_TIMER_MS = 10 * 60_000;
/**
 * A connection, join or stream that takes a minute to open is refused (see
 * `assertRemembered`), and one can wait on Redis three times: past this, a
 * stalled Redis would refuse every one of them instead of being worked around.
 */
const MAX_REDIS_COMMAND_TIMEOUT_MS = 10_000;

/** Each room a connection may hold is also a packet it may send at its start (rejoining). */
const MAX_ROOMS_PER_CONNECTION_LIMIT = 1000;

/**
 * How many members a `chat:join` answers with by default (the rest by
 * `GET /api/rooms/:id/members`): a public room's members only grow (a join
 * makes its user one), and all of a busy room's in every join's answer would
 * cost each join a read of them all.
 */
export const DEFAULT_JOIN_MEMBERS_LIMIT = 1000;

/**
 * The shortest shutdown timeout: a stalled stream's grace, then a second to
 * close the database and Redis. Shorter, a shutdown with one client that
 * stopped reading would end in the forced exit 1.
 */
const MIN_SHUTDOWN_TIMEOUT_MS = SHUTDOWN_GRACES.streamEndMs + 1_000;

/** The longest REST throttle window: a day. */
const MAX_THROTTLE_WINDOW_MS = 24 * 60 * 60_000;

/** A duration from `bounds.min` to `bounds.max`; a malformed one is left to DURATION_PATTERN to report. */
function IsDurationWithin(bounds: { min: string; max: string }, options: ValidationOptions) {
  const [min, max] = [parseDuration(bounds.min), parseDuration(bounds.max)];
  const isWithin = (value: unknown) => {
    if (typeof value !== 'string' || !DURATION_PATTERN.test(value)) return true;
    const seconds = parseDuration(value);
    return seconds >= min && seconds <= max;
  };
  return ValidateBy({ name: 'isDurationWithin', validator: { validate: isWithin } }, options);
}

/** A rate like 20/10s whose window is at most a day: Redis refuses the expiry of a longer one. */
function IsRate(name: string) {
  const isRate = (value: unknown) => {
    if (typeof value !== 'string' || !RATE_PATTERN.test(value)) return false;
    const { limit, windowMs } = parseRate(value);
    return Number.isSafeInteger(limit) && windowMs <= MAX_THROTTLE_WINDOW_MS;
  };
  return ValidateBy(
    { name: 'isRate', validator: { validate: isRate } },
    { message: `${name} must be a rate like 20/10s (count/window), its window at most a day` },
  );
}

/** Of a JWT secret: long, with no spaces around it, and more than a few distinct characters. */
const SECRET_RULES = { minLength: 32, minDistinct: 8 };

/** Refuses what passes a length check but guards nothing: 32 spaces, `a` × 32. */
function IsUsableSecret(options: ValidationOptions) {
  const isUsable = (value: unknown) =>
    typeof value === 'string' &&
    value === value.trim() &&
    value.length >= SECRET_RULES.minLength &&
    new Set(value).size >= SECRET_RULES.minDistinct;
  return ValidateBy({ name: 'isUsableSecret', validator: { validate: isUsable } }, options);
}

/** An address to listen on: an IP address or a host name, without a port. */
function IsListenHost() {
  const isHost = (value: unknown) =>
    typeof value === 'string' &&
    (isIP(value) || isFQDN(value, { require_tld: false, allow_numeric_tld: true }));
  return ValidateBy(
    { name: 'isListenHost', validator: { validate: isHost } },
    { message: 'HOST must be an IP address or a host name to listen on, without a port' },
  );
}

/** Valid when `parse` reads the value; otherwise what it threw is the message. */
function IsReadBy(parse: (value: string) => unknown) {
  const problemWith = (value: unknown): string | undefined => {
    try {
      parse(String(value));
      return undefined;
    } catch (error) {
      return (error as Error).message;
    }
  };
  return ValidateBy({
    name: 'isReadBy',
    validator: {
      validate: (value) => problemWith(value) === undefined,
      defaultMessage: (args) => problemWith(args?.value) ?? '',
    },
  });
}

/**
 * Every environment variable the service reads, with its rules and default.
 * Anything not valid stops start-up with a message naming the variable.
 */
export class EnvironmentVariables {
  @IsIn(NODE_ENVS)
  NODE_ENV: (typeof NODE_ENVS)[number] = 'development';

  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(65535)
  PORT = 3000;

  @IsListenHost()
  HOST = '0.0.0.0';

  @IsOptional()
  @Matches(/^postgres(ql)?:\/\/\S+$/, { message: 'DATABASE_URL must be a postgres:// URL' })
  DATABASE_URL?: string;

  @IsOptional()
  // PostgreSQL keeps names starting with pg_ for its own schemas, and refuses to create one.
  @Matches(/^(?!pg_)[a-z_][a-z0-9_]{0,62}$/, {
    message: 'DATABASE_SCHEMA must be a lower-case SQL identifier, not starting with pg_',
  })
  DATABASE_SCHEMA?: string;

  // Migrating holds one connection for its lock and runs on another.
  @Transform(toInt)
  @IsInt()
  @Min(2, { message: 'DATABASE_POOL_SIZE must be at least 2: migrations take two connections' })
  @Max(200)
  DATABASE_POOL_SIZE = 10;

  /**
   * A PostgreSQL query unanswered for this long fails, and its connection is
   * closed (see `closeConnectionsLeftWaiting`). Migrations have no limit.
   */
  @Transform(toInt)
  @IsInt()
  @Min(1000)
  @Max(MAX_TIMER_MS)
  DATABASE_QUERY_TIMEOUT_MS = 30_000;

  @IsString()
  @MinLength(1)
  SQLITE_PATH = 'data/app.sqlite';

  @IsIn(SQLITE_SYNCHRONOUS_MODES)
  SQLITE_SYNCHRONOUS: (typeof SQLITE_SYNCHRONOUS_MODES)[number] = 'full';

  @Transform(toBool)
  @IsBoolean()
  MIGRATIONS_RUN = true;

  /** The OpenAPI document and Swagger UI at /api/docs; off, neither is served. */
  @Transform(toBool)
  @IsBoolean()
  API_DOCS = true;

  /** A message write the database has not answered by then is given up on (its senders get UNAVAILABLE). */
  @Transform(toInt)
  @IsInt()
  @Min(1000)
  @Max(600_000)
  MESSAGE_WRITE_TIMEOUT_MS = 15_000;

  @IsOptional()
  @Matches(/^rediss?:\/\/\S+$/, { message: 'REDIS_URL must be a redis:// or rediss:// URL' })
  REDIS_URL?: string;

  @IsString()
  @Matches(/^[\w:.-]{1,64}$/, { message: 'REDIS_KEY_PREFIX must be 1-64 of [A-Za-z0-9_:.-]' })
  REDIS_KEY_PREFIX = 'rt:';

  /** Required where a per-process secret fails: in production, and where nodes share Redis. */
  @ValidateIf(
    (env: EnvironmentVariables) =>
      env.NODE_ENV === 'production' || !!env.REDIS_URL || !!env.JWT_SECRET,
  )
  @IsString({
    message:
      'JWT_SECRET is required when NODE_ENV=production or REDIS_URL is set (nodes must share it)',
  })
  @IsUsableSecret({
    message: `JWT_SECRET must be at least ${SECRET_RULES.minLength} characters long, without spaces around it, with at least ${SECRET_RULES.minDistinct} different characters`,
  })
  JWT_SECRET?: string;

  @Matches(DURATION_PATTERN, { message: 'JWT_EXPIRES_IN must be a duration like 3600, 15m or 1h' })
  @IsDurationWithin(JWT_LIFETIME, {
    message: `JWT_EXPIRES_IN must be from ${JWT_LIFETIME.min} to ${JWT_LIFETIME.max}`,
  })
  JWT_EXPIRES_IN = '1h';

  @Matches(DURATION_PATTERN, {
    message: 'JWT_SESSION_MAX_AGE must be a duration like 3600, 12h or 30d',
  })
  @IsDurationWithin(SESSION_LIFETIME, {
    message: `JWT_SESSION_MAX_AGE must be from ${SESSION_LIFETIME.min} to ${SESSION_LIFETIME.max}`,
  })
  JWT_SESSION_MAX_AGE = '30d';

  @IsReadBy(parseCorsOrigins)
  CORS_ORIGINS = '';

  @IsIn(LOG_LEVELS)
  LOG_LEVEL: (typeof LOG_LEVELS)[number] = 'info';

  @Transform(toInt)
  @IsInt()
  @Min(1024)
  @Max(64 * 1024 * 1024)
  BODY_LIMIT_BYTES = 1024 * 1024;

  @Transform(toInt)
  @IsInt()
  @Min(4)
  @Max(15)
  BCRYPT_ROUNDS = 12;

  /** Threads that hash passwords: all usable cores but one, so that the event loop keeps one. */
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(64)
  PASSWORD_HASH_THREADS = Math.min(4, Math.max(1, usableCores() - 1));

  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(10_000)
  PASSWORD_HASH_QUEUE_LIMIT = 64;

  @IsReadBy(parseTrustProxy)
  TRUST_PROXY = 'false';

  @Transform(toInt)
  @IsInt()
  @Min(1)
  THROTTLE_DEFAULT_LIMIT = 300;

  @Transform(toInt)
  @IsInt()
  @Min(100)
  @Max(MAX_THROTTLE_WINDOW_MS)
  THROTTLE_DEFAULT_TTL_MS = 60_000;

  @Transform(toInt)
  @IsInt()
  @Min(1)
  THROTTLE_AUTH_LIMIT = 10;

  @Transform(toInt)
  @IsInt()
  @Min(100)
  @Max(MAX_THROTTLE_WINDOW_MS)
  THROTTLE_AUTH_TTL_MS = 60_000;

  @Transform(toInt)
  @IsInt()
  @Min(MIN_SHUTDOWN_TIMEOUT_MS, {
    message:
      `SHUTDOWN_TIMEOUT_MS must be at least ${MIN_SHUTDOWN_TIMEOUT_MS}: clients get ` +
      `${SHUTDOWN_GRACES.connectionCloseMs} ms to close and a stream that stopped reading ` +
      `${SHUTDOWN_GRACES.streamEndMs} ms to take its last events, and a shorter timeout would ` +
      'cut the shutdown with exit 1',
  })
  @Max(MAX_TIMER_MS)
  SHUTDOWN_TIMEOUT_MS = 10_000;

  @IsOptional()
  @IsString()
  @MaxLength(64)
  SERVICE_NAME?: string;

  @IsString()
  WEB_ROOT = 'dist/web';

  @Transform(toInt)
  @IsInt()
  @Min(1000)
  @Max(MAX_TIMER_MS)
  WS_PING_INTERVAL_MS = 25_000;

  @Transform(toInt)
  @IsInt()
  @Min(1000)
  @Max(MAX_TIMER_MS)
  WS_PING_TIMEOUT_MS = 20_000;

  @Transform(toInt)
  @IsInt()
  @Min(1024)
  @Max(16 * 1024 * 1024)
  WS_MAX_PAYLOAD_BYTES = DEFAULT_MAX_PAYLOAD_BYTES;

  @Transform(toInt)
  @IsInt()
  @Min(1)
  MAX_SOCKETS_PER_USER = 20;

  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(MAX_ROOMS_PER_CONNECTION_LIMIT)
  MAX_ROOMS_PER_CONNECTION = 100;

  @Transform(toInt)
  @IsInt()
  @Min(64 * 1024)
  SLOW_CONSUMER_LIMIT_BYTES = 1024 * 1024;

  /** Unset, DEFAULT_JOIN_MEMBERS_LIMIT, with any SLOW_CONSUMER_LIMIT_BYTES as before there was a setting. */
  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(1)
  JOIN_MEMBERS_LIMIT?: number;

  @Transform(toInt)
  @IsInt()
  @Min(1)
  MAX_PACKETS_PER_SECOND = 100;

  @IsRate('RATE_LIMIT_CHAT_MESSAGE')
  RATE_LIMIT_CHAT_MESSAGE = '20/10s';

  @IsRate('RATE_LIMIT_CHAT_TYPING')
  RATE_LIMIT_CHAT_TYPING = '5/1s';

  @IsRate('RATE_LIMIT_CHAT_JOIN')
  RATE_LIMIT_CHAT_JOIN = '300/60s';

  @IsRate('RATE_LIMIT_ROOM_PRESENCE')
  RATE_LIMIT_ROOM_PRESENCE = '60/60s';

  @IsRate('RATE_LIMIT_CONNECTIONS_PER_IP')
  RATE_LIMIT_CONNECTIONS_PER_IP = '120/60s';

  @IsRate('RATE_LIMIT_TOKEN_RENEW')
  RATE_LIMIT_TOKEN_RENEW = '10/60s';

  @IsRate('RATE_LIMIT_USER_LOOKUP')
  RATE_LIMIT_USER_LOOKUP = '30/60s';

  @IsRate('RATE_LIMIT_ROOM_INVITE')
  RATE_LIMIT_ROOM_INVITE = '30/60s';

  @IsRate('RATE_LIMIT_LOGIN_PER_ACCOUNT')
  RATE_LIMIT_LOGIN_PER_ACCOUNT = '20/15m';

  @Transform(toInt)
  @IsInt()
  @Min(1000)
  @Max(MAX_TIMER_MS)
  SSE_HEARTBEAT_MS = 30_000;

  @Transform(toInt)
  @IsInt()
  @Min(1500)
  @Max(MAX_TIMER_MS)
  PRESENCE_TTL_MS = 30_000;

  @Transform(toInt)
  @IsInt()
  @Min(100)
  @Max(MAX_REDIS_COMMAND_TIMEOUT_MS)
  REDIS_COMMAND_TIMEOUT_MS = 2_000;

  /** A connection whose pings (every third of this) have had no answer for this long is made anew. */
  @Transform(toInt)
  @IsInt()
  @Min(1500)
  @Max(MAX_TIMER_MS)
  REDIS_SILENT_AFTER_MS = 30_000;

  /** Off: a Redis outage, which every node sees at once, does not make every node unready. */
  @Transform(toBool)
  @IsBoolean()
  READINESS_REQUIRES_REDIS = true;

  @Transform(toInt)
  @IsInt()
  @Min(1)
  MAX_SSE_STREAMS_PER_USER = 10;
}

export type RawEnvironment = Record<string, string | undefined>;

/** Thrown when the environment is invalid; its message names every bad variable. */
export class InvalidConfigurationError extends Error {
  override name = 'InvalidConfigurationError';
}

function withoutEmptyValues(raw: RawEnvironment): RawEnvironment {
  return Object.fromEntries(Object.entries(raw).filter(([, value]) => value !== ''));
}

/**
 * Settings valid each alone that do not fit together, each as the line to
 * report: a session outlasts the token it starts with, a client coming
 * back must be able to rejoin every room it may hold, the backlog a client
 * may leave holds two messages of the largest size and a join's answer its
 * members, and a shutdown must
 * outlast a stalled Redis, which it waits on twice (the writes that
 * closing connections leave, then closing its clients).
 */
function mismatches(env: EnvironmentVariables): string[] {
  const problems: string[] = [];
  if (parseDuration(env.JWT_SESSION_MAX_AGE) < parseDuration(env.JWT_EXPIRES_IN)) {
    problems.push(
      `  JWT_SESSION_MAX_AGE: ${env.JWT_SESSION_MAX_AGE} is shorter than one token's lifetime ` +
        `(JWT_EXPIRES_IN=${env.JWT_EXPIRES_IN})`,
    );
  }
  const joins = parseRate(env.RATE_LIMIT_CHAT_JOIN).limit;
  if (joins < env.MAX_ROOMS_PER_CONNECTION) {
    problems.push(
      `  RATE_LIMIT_CHAT_JOIN: allows ${joins} joins a window, fewer than MAX_ROOMS_PER_CONNECTION ` +
        `(${env.MAX_ROOMS_PER_CONNECTION}): a client coming back could not rejoin every room it held`,
    );
  }
  if (env.SLOW_CONSUMER_LIMIT_BYTES < 2 * env.WS_MAX_PAYLOAD_BYTES) {
    problems.push(
      `  SLOW_CONSUMER_LIMIT_BYTES: must be at least ${2 * env.WS_MAX_PAYLOAD_BYTES}, twice ` +
        `WS_MAX_PAYLOAD_BYTES (${env.WS_MAX_PAYLOAD_BYTES}): a client that reads would be dropped ` +
        'as slow behind two messages of the largest size, and a /ws frame of it refused while ' +
        'another waits its turn',
    );
  }
  problems.push(...joinAnswerMismatches(env), ...storageMismatches(env), ...weakInProduction(env));
  const shutdownNeeds = shutdownReserveMs(env);
  if (env.REDIS_URL && env.SHUTDOWN_TIMEOUT_MS < shutdownNeeds) {
    problems.push(
      `  SHUTDOWN_TIMEOUT_MS: must be at least ${shutdownNeeds} with REDIS_COMMAND_TIMEOUT_MS=` +
        `${env.REDIS_COMMAND_TIMEOUT_MS}: ${MIN_SHUTDOWN_TIMEOUT_MS} ms for the clients, then a ` +
        'stalled Redis is waited on twice (the writes closing connections leave, then closing ' +
        'its clients), and a shorter timeout would cut the shutdown with exit 1',
    );
  }
  return problems;
}

/** A join's members must fit in the share of the slow-consumer limit its answer may take. */
function joinAnswerMismatches(env: EnvironmentVariables): string[] {
  const answerBytes = env.SLOW_CONSUMER_LIMIT_BYTES * JOIN_ANSWER_SHARE_OF_SLOW_CONSUMER_LIMIT;
  const fitting = Math.floor(answerBytes / MAX_MEMBER_SUMMARY_JSON_BYTES);
  if (env.JOIN_MEMBERS_LIMIT === undefined || env.JOIN_MEMBERS_LIMIT <= fitting) return [];
  return [
    `  JOIN_MEMBERS_LIMIT: at most ${fitting} with SLOW_CONSUMER_LIMIT_BYTES=` +
      `${env.SLOW_CONSUMER_LIMIT_BYTES}: a join's answer may take half of that, and ` +
      `${env.JOIN_MEMBERS_LIMIT} members of the longest names would not fit, so a client on a ` +
      'slow link would be dropped as a slow consumer on every join; raise both together',
  ];
}

/**
 * Settings that would leave a node on a database of its own, or unreachable:
 * nodes that share Redis must share PostgreSQL (each would otherwise keep its
 * own SQLite file), a schema is PostgreSQL's, and a production node listens
 * where its proxy and health check look for it.
 */
function storageMismatches(env: EnvironmentVariables): string[] {
  const problems: string[] = [];
  const production = env.NODE_ENV === 'production';
  if (production && env.REDIS_URL && !env.DATABASE_URL) {
    problems.push(
      '  DATABASE_URL: required when NODE_ENV=production and REDIS_URL is set: nodes that share ' +
        'Redis must share one database, and without it each keeps a SQLite file of its own',
    );
  }
  if (env.DATABASE_SCHEMA && !env.DATABASE_URL) {
    problems.push(
      '  DATABASE_SCHEMA: applies to PostgreSQL only; set DATABASE_URL, or leave it out for SQLite',
    );
  }
  if (production && env.PORT === 0) {
    problems.push('  PORT: 0 (a random port) is for tests; a production node needs a fixed one');
  }
  return problems;
}

/** Below this a stolen table of password hashes is cheap to crack: for tests only. */
const MIN_PRODUCTION_BCRYPT_ROUNDS = 10;

function weakInProduction(env: EnvironmentVariables): string[] {
  if (env.NODE_ENV !== 'production' || env.BCRYPT_ROUNDS >= MIN_PRODUCTION_BCRYPT_ROUNDS) return [];
  return [
    `  BCRYPT_ROUNDS: ${env.BCRYPT_ROUNDS} is for tests; NODE_ENV=production needs at least ` +
      `${MIN_PRODUCTION_BCRYPT_ROUNDS}`,
  ];
}

/**
 * What a shutdown needs after the sends in flight are done: the clients'
 * graces and, with Redis, two waits on a stalled one. The rest of
 * SHUTDOWN_TIMEOUT_MS is what those sends may take.
 */
export function shutdownReserveMs(
  env: Pick<EnvironmentVariables, 'REDIS_URL' | 'REDIS_COMMAND_TIMEOUT_MS'>,
): number {
  return MIN_SHUTDOWN_TIMEOUT_MS + (env.REDIS_URL ? 2 * env.REDIS_COMMAND_TIMEOUT_MS : 0);
}

export function validateEnvironment(raw: RawEnvironment): EnvironmentVariables {
  const env = plainToInstance(EnvironmentVariables, withoutEmptyValues(raw), {
    excludeExtraneousValues: false,
  });
  const errors = validateSync(env, { skipMissingProperties: false, forbidUnknownValues: false });
  const lines =
    errors.length > 0
      ? errors.map(
          (error) => `  ${error.property}: ${Object.values(error.constraints ?? {}).join('; ')}`,
        )
      : mismatches(env);
  if (lines.length > 0) {
    throw new InvalidConfigurationError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  return env;
}
