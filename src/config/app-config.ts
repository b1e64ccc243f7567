import { randomBytes } from 'node:crypto';
import { isAbsolute, resolve } from 'node:path';
import { parseDuration, parseRate } from './duration';
import {
  DEFAULT_JOIN_MEMBERS_LIMIT,
  shutdownReserveMs,
  validateEnvironment,
  type RawEnvironment,
  type SQLITE_SYNCHRONOUS_MODES,
} from './env.validation';
import { parseCorsOrigins } from './cors-origins';
import { parseTrustProxy, type TrustProxy } from './trust-proxy';

export interface HttpConfig {
  nodeEnv: 'development' | 'production' | 'test';
  host: string;
  port: number;
  corsOrigins: string[];
  bodyLimitBytes: number;
  trustProxy: TrustProxy;
  shutdownTimeoutMs: number;
  /**
   * How long a shutdown waits for the sends in flight before it tells the
   * clients to go anyway: what the timeout leaves after everything after it.
   */
  finishSendsWithinMs: number;
  logLevel: string;
  serviceName: string;
  /** The built chat page, served at `/` when the folder exists. */
  webRoot: string;
  /** Whether /api/docs (Swagger UI) and /api/docs-json are served. */
  apiDocs: boolean;
}

export type DatabaseConfig =
  | {
      type: 'postgres';
      url: string;
      schema?: string;
      poolSize: number;
      /** Longest wait for a query's answer before its connection is given up. */
      queryTimeoutMs: number;
      migrationsRun: boolean;
    }
  | {
      type: 'better-sqlite3';
      path: string;
      /**
       * `full` syncs every commit to disk, so an acknowledged message survives
       * a power loss; `normal` syncs only at WAL checkpoints, surviving a crash
       * of the process but not of the machine.
       */
      synchronous: (typeof SQLITE_SYNCHRONOUS_MODES)[number];
      migrationsRun: boolean;
    };

export interface AuthConfig {
  jwtSecret: string;
  /** True when no JWT_SECRET was given and a per-process one was generated. */
  jwtSecretGenerated: boolean;
  jwtExpiresInSeconds: number;
  /** How long after its login a session may still be refreshed. */
  sessionMaxAgeSeconds: number;
  bcryptRounds: number;
  /** Worker threads that hash passwords, off the event loop. */
  hashThreads: number;
  /** Hashes that may wait for a thread; sign-ins beyond are refused (UNAVAILABLE). */
  hashQueueLimit: number;
}

export interface RedisConfig {
  url?: string;
  keyPrefix: string;
  /** How long a node's presence and connection entries outlive its last heartbeat. */
  presenceTtlMs: number;
  /** How long a command may wait for Redis before it fails (and callers fall back to the node). */
  commandTimeoutMs: number;
  /**
   * How long a connection may go without answering its pings before it is
   * dropped and made again: one that carries nothing, yet never closes (a
   * proxy or a firewall in between), would otherwise be trusted for good.
   */
  silentAfterMs: number;
  /** Whether readiness fails while Redis is away (`redis_connected` tells it either way). */
  requiredForReadiness: boolean;
}

export interface ThrottleConfig {
  defaultLimit: number;
  defaultTtlMs: number;
  authLimit: number;
  authTtlMs: number;
}

/** Everything a user can do that has a budget of its own (live events, name lookups, invitations). */
export type RateLimitedAction =
  'message' | 'typing' | 'join' | 'presence' | 'connect' | 'renew' | 'lookup' | 'invite' | 'login';

export interface Rate {
  limit: number;
  windowMs: number;
}

export interface RealtimeConfig {
  pingIntervalMs: number;
  pingTimeoutMs: number;
  maxPayloadBytes: number;
  maxSocketsPerUser: number;
  maxRoomsPerConnection: number;
  /** A `chat:join` answers with at most this many members, with `membersTruncated` past them. */
  joinMembersLimit: number;
  /** A connection with more outgoing data waiting than this is dropped. */
  slowConsumerLimitBytes: number;
  /** Packets a connection may send per second (bursts of twice that): beyond, it is cut off. */
  maxPacketsPerSecond: number;
  sseHeartbeatMs: number;
  maxSseStreamsPerUser: number;
  rates: Record<RateLimitedAction, Rate>;
}

/** The whole typed configuration, read through `ConfigService<AllConfig, true>`. */
export interface MessagesConfig {
  /** A message write the database has not answered by then is given up on. */
  writeTimeoutMs: number;
}

export interface AllConfig {
  http: HttpConfig;
  database: DatabaseConfig;
  messages: MessagesConfig;
  auth: AuthConfig;
  redis: RedisConfig;
  throttle: ThrottleConfig;
  realtime: RealtimeConfig;
}

/** Sends in flight get at least this long, even when the shutdown timeout leaves them less. */
const MIN_FINISH_SENDS_MS = 1_000;

export function loadConfig(raw: RawEnvironment = process.env): AllConfig {
  const env = validateEnvironment(raw);
  const migrationsRun = env.MIGRATIONS_RUN;
  return {
    http: {
      nodeEnv: env.NODE_ENV,
      host: env.HOST,
      port: env.PORT,
      corsOrigins: parseCorsOrigins(env.CORS_ORIGINS),
      bodyLimitBytes: env.BODY_LIMIT_BYTES,
      trustProxy: parseTrustProxy(env.TRUST_PROXY),
      shutdownTimeoutMs: env.SHUTDOWN_TIMEOUT_MS,
      finishSendsWithinMs: Math.max(
        MIN_FINISH_SENDS_MS,
        env.SHUTDOWN_TIMEOUT_MS - shutdownReserveMs(env),
      ),
      logLevel: env.LOG_LEVEL,
      serviceName: env.SERVICE_NAME ?? 'realtime-backend',
      webRoot: resolve(env.WEB_ROOT),
      apiDocs: env.API_DOCS,
    },
    database: env.DATABASE_URL
      ? {
          type: 'postgres',
          url: env.DATABASE_URL,
          schema: env.DATABASE_SCHEMA,
          poolSize: env.DATABASE_POOL_SIZE,
          queryTimeoutMs: env.DATABASE_QUERY_TIMEOUT_MS,
          migrationsRun,
        }
      : {
          type: 'better-sqlite3',
          path: isAbsolute(env.SQLITE_PATH) ? env.SQLITE_PATH : resolve(env.SQLITE_PATH),
          synchronous: env.SQLITE_SYNCHRONOUS,
          migrationsRun,
        },
    auth: {
      jwtSecret: env.JWT_SECRET ?? randomBytes(48).toString('base64url'),
      jwtSecretGenerated: !env.JWT_SECRET,
      jwtExpiresInSeconds: parseDuration(env.JWT_EXPIRES_IN),
      sessionMaxAgeSeconds: parseDuration(env.JWT_SESSION_MAX_AGE),
      bcryptRounds: env.BCRYPT_ROUNDS,
      hashThreads: env.PASSWORD_HASH_THREADS,
      hashQueueLimit: env.PASSWORD_HASH_QUEUE_LIMIT,
    },
    redis: {
      url: env.REDIS_URL,
      keyPrefix: env.REDIS_KEY_PREFIX,
      presenceTtlMs: env.PRESENCE_TTL_MS,
      commandTimeoutMs: env.REDIS_COMMAND_TIMEOUT_MS,
      silentAfterMs: env.REDIS_SILENT_AFTER_MS,
      requiredForReadiness: env.READINESS_REQUIRES_REDIS,
    },
    realtime: {
      pingIntervalMs: env.WS_PING_INTERVAL_MS,
      pingTimeoutMs: env.WS_PING_TIMEOUT_MS,
      maxPayloadBytes: env.WS_MAX_PAYLOAD_BYTES,
      maxSocketsPerUser: env.MAX_SOCKETS_PER_USER,
      maxRoomsPerConnection: env.MAX_ROOMS_PER_CONNECTION,
      joinMembersLimit: env.JOIN_MEMBERS_LIMIT ?? DEFAULT_JOIN_MEMBERS_LIMIT,
      slowConsumerLimitBytes: env.SLOW_CONSUMER_LIMIT_BYTES,
      maxPacketsPerSecond: env.MAX_PACKETS_PER_SECOND,
      sseHeartbeatMs: env.SSE_HEARTBEAT_MS,
      maxSseStreamsPerUser: env.MAX_SSE_STREAMS_PER_USER,
      rates: {
        message: parseRate(env.RATE_LIMIT_CHAT_MESSAGE),
        typing: parseRate(env.RATE_LIMIT_CHAT_TYPING),
        join: parseRate(env.RATE_LIMIT_CHAT_JOIN),
        presence: parseRate(env.RATE_LIMIT_ROOM_PRESENCE),
        connect: parseRate(env.RATE_LIMIT_CONNECTIONS_PER_IP),
        renew: parseRate(env.RATE_LIMIT_TOKEN_RENEW),
        lookup: parseRate(env.RATE_LIMIT_USER_LOOKUP),
        invite: parseRate(env.RATE_LIMIT_ROOM_INVITE),
        login: parseRate(env.RATE_LIMIT_LOGIN_PER_ACCOUNT),
      },
    },
    messages: { writeTimeoutMs: env.MESSAGE_WRITE_TIMEOUT_MS },
    throttle: {
      defaultLimit: env.THROTTLE_DEFAULT_LIMIT,
      defaultTtlMs: env.THROTTLE_DEFAULT_TTL_MS,
      authLimit: env.THROTTLE_AUTH_LIMIT,
      authTtlMs: env.THROTTLE_AUTH_TTL_MS,
    },
  };
}
