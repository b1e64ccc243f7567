import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Database } from 'better-sqlite3';
import type { DataSourceOptions } from 'typeorm';
import { MIGRATIONS } from '../../migrations';
import { reasonOf } from '@app/common/errors/reason-of';
import type { DatabaseConfig } from '@app/config/app-config';
import { ENTITIES } from './entities';

const MIGRATIONS_TABLE = 'migrations';
/** No transaction of the service waits on anything else this long between its statements. */
const IDLE_IN_TRANSACTION_MS = 60_000;
/** Idle seconds before either end of a PostgreSQL connection probes whether the other is still there. */
const KEEPALIVE_IDLE_S = 10;
/**
 * How often the server checks, while it runs a statement, that the node
 * still waits for it (PostgreSQL 14 or later).
 */
const CLIENT_CHECK_MS = 1_000;

/**
 * Commits are durable before they return, whatever the role's or the
 * database's `synchronous_commit` (a common tuning turns it off): a message
 * is acked after its commit, and a crash must not hand its seq to another.
 * The last setting of `DATABASE_URL`'s own `options` is kept when it flushes
 * locally too (`local`, `remote_write`, `on`, `remote_apply`); `off` is not.
 */
const DURABLE_COMMITS: ReadonlySet<string> = new Set([
  'local',
  'remote_write',
  'on',
  'remote_apply',
]);

/** Set last, so that it wins: the URL's own durable choice, or `on`. */
function commitSetting(fromUrl: string | undefined): string {
  const asked = optionSettings(fromUrl ?? '')
    .filter(([name]) => name === 'synchronous_commit')
    .at(-1)?.[1]
    .toLowerCase();
  return `-c synchronous_commit=${asked !== undefined && DURABLE_COMMITS.has(asked) ? asked : 'on'}`;
}

/**
 * The settings of a startup `options` string, in order, as PostgreSQL reads
 * them: words split at unescaped whitespace (a backslash escapes the next
 * character), each `-c name=value`, `-cname=value` or `--name=value`, names
 * in lower case with dashes read as underscores.
 */
export function optionSettings(options: string): Array<[string, string]> {
  const words = wordsOf(options);
  const settings: Array<[string, string]> = [];
  for (let i = 0; i < words.length; i += 1) {
    const word = words[i];
    let setting: string | undefined;
    if (word === '-c') setting = words[(i += 1)];
    else if (word.startsWith('--')) setting = word.slice(2);
    else if (word.startsWith('-c')) setting = word.slice(2);
    const at = setting?.indexOf('=') ?? -1;
    if (setting === undefined || at <= 0) continue;
    settings.push([setting.slice(0, at).toLowerCase().replace(/-/g, '_'), setting.slice(at + 1)]);
  }
  return settings;
}

function wordsOf(options: string): string[] {
  const words: string[] = [];
  let word = '';
  for (let i = 0; i < options.length; i += 1) {
    const char = options[i];
    if (char === '\\' && i + 1 < options.length) word += options[(i += 1)];
    else if (/\s/.test(char)) {
      if (word) words.push(word);
      word = '';
    } else word += char;
  }
  if (word) words.push(word);
  return words;
}

/**
 * Settings of every PostgreSQL session. Transactions are READ COMMITTED
 * whatever the server's default (the message store's row locks rely on it),
 * set once per connection rather than by a statement per transaction.
 * Unqualified names in migrations resolve into the configured schema.
 */
function sessionOptions(schema: string | undefined): string {
  const options = [
    '-c default_transaction_isolation=read\\ committed',
    // A node that froze, or lost its connection, inside a transaction must not
    // hold its row locks (a room's, which every send to it needs) for hours:
    // the server ends such a session once it has been idle, or gone, that long.
    `-c idle_in_transaction_session_timeout=${IDLE_IN_TRANSACTION_MS}`,
    // A statement the node gave up on (a write past MESSAGE_WRITE_TIMEOUT_MS, whose sender was
    // told so) closes its connection: the server cancels it then, rather than let it wait on
    // a lock and commit minutes later, holding a connection all along.
    `-c client_connection_check_interval=${CLIENT_CHECK_MS}`,
    `-c tcp_keepalives_idle=${KEEPALIVE_IDLE_S}`,
    '-c tcp_keepalives_interval=5',
    '-c tcp_keepalives_count=3',
  ];
  if (schema) options.push(`-c search_path=${schema}`);
  return options.join(' ');
}

/**
 * The URL without its `options` parameter, and the session options with the
 * URL's first. pg lets a URL's `options` replace the configured ones whole,
 * which would drop the isolation level and the schema; repeated, the later
 * `-c` of a setting wins, so ours hold. Only the query is rewritten: the rest
 * may be a form only pg reads (`postgres://user@/db?host=/run/postgresql`).
 */
export function postgresConnection(
  url: string,
  schema: string | undefined,
): { url: string; options: string } {
  const queryAt = url.indexOf('?');
  const query = new URLSearchParams(queryAt === -1 ? '' : url.slice(queryAt + 1));
  // As pg reads a repeated parameter: the last one.
  const fromUrl = query.getAll('options').at(-1);
  const ours = `${sessionOptions(schema)} ${commitSetting(fromUrl)}`;
  if (fromUrl === undefined) return { url, options: ours };
  return { url: withoutQueryParameters(url, ['options']), options: `${fromUrl} ${ours}` };
}

/**
 * Migrations wait as long as they must: an index built CONCURRENTLY waits
 * for every transaction using its table, then reads it all. A
 * `statement_timeout` or `lock_timeout` of the URL (or of the role) would
 * cancel them halfway, over and over; the service's own sessions keep them.
 */
const MIGRATION_SESSION_OPTIONS = '-c statement_timeout=0 -c lock_timeout=0';

/** pg's value for waiting as long as a query takes. */
const NO_QUERY_TIMEOUT = 0;

/** Time limits pg also reads as parameters of the URL itself, where they would override ours. */
const URL_TIME_LIMITS = ['statement_timeout', 'lock_timeout', 'query_timeout'];

/** The options to migrate with: the service's, with no time limit on statements or locks. */
export function forMigrations(options: DataSourceOptions): DataSourceOptions {
  if (options.type === 'better-sqlite3') return { ...options, timeout: SQLITE_MIGRATION_BUSY_MS };
  if (options.type !== 'postgres') return options;
  const extra = options.extra as { options: string };
  return {
    ...options,
    url: options.url && withoutQueryParameters(options.url, URL_TIME_LIMITS),
    extra: {
      ...extra,
      options: `${extra.options} ${MIGRATION_SESSION_OPTIONS}`,
      query_timeout: NO_QUERY_TIMEOUT,
    },
  };
}

/** Only the query is rewritten: the rest may be a form only pg reads (see `postgresConnection`). */
function withoutQueryParameters(url: string, names: string[]): string {
  const queryAt = url.indexOf('?');
  if (queryAt === -1) return url;
  const query = new URLSearchParams(url.slice(queryAt + 1));
  for (const name of names) query.delete(name);
  const rest = query.toString();
  return `${url.slice(0, queryAt)}${rest ? `?${rest}` : ''}`;
}

/**
 * The one set of TypeORM options, used by the app and by the CLI data source.
 * Schema changes only ever come from migrations.
 */
export function typeormOptions(config: DatabaseConfig): DataSourceOptions {
  const common = {
    entities: ENTITIES,
    migrations: MIGRATIONS,
    migrationsTableName: MIGRATIONS_TABLE,
    // Read by our own start-up step, which locks and creates the schema first.
    migrationsRun: config.migrationsRun,
    synchronize: false,
    // Failed queries surface as exceptions; TypeORM's own log would print their parameters.
    logging: false,
  };
  if (config.type === 'postgres') {
    const connection = postgresConnection(config.url, config.schema);
    return {
      ...common,
      type: 'postgres',
      url: connection.url,
      schema: config.schema,
      poolSize: config.poolSize,
      extra: {
        max: config.poolSize,
        connectionTimeoutMillis: 5_000,
        options: connection.options,
        // A connection whose server vanished without a word fails instead of waiting for good.
        keepAlive: true,
        keepAliveInitialDelayMillis: KEEPALIVE_IDLE_S * 1000,
        // ...and one that stops answering, so far as the ORM's queries are
        // concerned; the pool then closes it (see `closeConnectionsLeftWaiting`).
        query_timeout: config.queryTimeoutMs,
      },
    };
  }
  makeDirectoryOf(config.path);
  return {
    ...common,
    type: 'better-sqlite3',
    database: config.path,
    // Set on every open: SQLite's default differs between a new file and a
    // reopened WAL file (FULL, then NORMAL), and with it whether an
    // acknowledged message survives a power loss.
    prepareDatabase: (db: Database) => {
      db.pragma(`synchronous = ${config.synchronous}`);
    },
    enableWAL: true,
    timeout: SQLITE_SERVING_BUSY_MS,
  };
}

/**
 * How long a write waits for a lock another process holds on the SQLite file
 * (an operator's shell, a migration run beside the service). better-sqlite3
 * waits by sleeping on the calling thread, the event loop's: a long wait would
 * freeze every connection, ping and health check with it. A write that finds
 * the file still locked fails with UNAVAILABLE, which clients retry.
 */
const SQLITE_SERVING_BUSY_MS = 50;
/** Migrations run before the service serves (or in a process of their own): they may wait. */
const SQLITE_MIGRATION_BUSY_MS = 10_000;

function makeDirectoryOf(path: string): void {
  try {
    mkdirSync(dirname(path), { recursive: true });
  } catch (error) {
    const reason = reasonOf(error);
    throw new Error(`Cannot create the directory of SQLITE_PATH: ${reason}`, { cause: error });
  }
}
