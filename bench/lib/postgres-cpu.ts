import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { Client } from 'pg';
import { cpuMs } from './proc-stats';

/**
 * The CPU time of a server's PostgreSQL backends over a measured run: work
 * its queries cost that the server's own CPU time does not include.
 *
 * A backend is the server's when its client port (`pg_stat_activity`) is
 * the local port of one of the server processes' TCP connections to
 * PostgreSQL (`/proc/<pid>/fd` and `/proc/<pid>/net/tcp*`); its CPU time is
 * read from `/proc/<pid>/stat`. Only for a PostgreSQL on this machine: the
 * connections must come from loopback and each backend must be a
 * `postgres` process here.
 *
 * Connection pools open and close connections during a run (pg closes one
 * idle for 10 s), so the backends are looked for, and their CPU time read,
 * every `POLL_MS` over the run: one query on one connection and a few small
 * `/proc` reads, plus a scan of the server's sockets only when a backend
 * not seen before appears. A backend that started during the run counts
 * from its start; one that ended counts up to its last reading, which
 * misses at most `POLL_MS` of a backend that, idle for seconds before
 * closing, did nothing in it.
 */
export type PostgresCpu = { cpuMs: number; backends: number } | { error: string };

const POLL_MS = 1_000;
const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);

/** The inodes of the sockets a process holds (`/proc/<pid>/fd/*` → `socket:[inode]`). */
function socketInodes(pid: number): Set<string> {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (match) inodes.add(match[1]);
    } catch {
      // Closed meanwhile.
    }
  }
  return inodes;
}

/** Local ports of a process's TCP connections to `remotePort` (`/proc/<pid>/net/tcp` and `tcp6`). */
function localPortsTo(pid: number, remotePort: number): Set<number> {
  const inodes = socketInodes(pid);
  const ports = new Set<number>();
  const port = (address: string) => parseInt(address.slice(address.lastIndexOf(':') + 1), 16);
  for (const table of ['tcp', 'tcp6']) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/net/${table}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length >= 10 && inodes.has(fields[9]) && port(fields[2]) === remotePort)
        ports.add(port(fields[1]));
    }
  }
  return ports;
}

function isPostgresProcess(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'postgres';
  } catch {
    return false;
  }
}

function cpuOrUndefined(pid: number): number | undefined {
  try {
    return cpuMs(pid);
  } catch {
    return undefined;
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

interface Backend {
  pid: number;
  client_addr: string | null;
  client_port: number;
  backend_start: Date;
}

interface Tracked {
  /** CPU time when the window started, or 0 for a backend started in it. */
  first: number;
  last: number;
}

export interface PostgresWatch {
  /** Starts the window: reads the backends' CPU time (synchronously) and starts polling. */
  begin(): void;
  /** Ends it: reads their CPU time at once (before its first await), then looks for late-found backends. */
  end(): Promise<PostgresCpu>;
}

class Watch implements PostgresWatch {
  private readonly tracked = new Map<number, Tracked>();
  /** Backends found not to be this server's. */
  private readonly foreign = new Set<number>();
  private windowStart = Number.POSITIVE_INFINITY;
  private error?: string;
  /** Set at the end of the window: no reading after it. */
  private ended = false;
  private polling?: Promise<void>;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly client: Client,
    private readonly remotePort: number,
    private readonly serverPids: readonly number[],
  ) {}

  /** Adds the server's backends not tracked yet. */
  async discover(): Promise<void> {
    if (this.error) return;
    try {
      const { rows } = await this.client.query<Backend>(
        `SELECT pid, host(client_addr) AS client_addr, client_port, backend_start
         FROM pg_stat_activity
         WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND client_port IS NOT NULL`,
      );
      const unseen = rows.filter((row) => !this.tracked.has(row.pid) && !this.foreign.has(row.pid));
      if (unseen.length === 0) return;
      const ports = new Set(
        this.serverPids.flatMap((pid) => [...localPortsTo(pid, this.remotePort)]),
      );
      for (const row of unseen) {
        if (!ports.has(row.client_port)) {
          this.foreign.add(row.pid);
          continue;
        }
        if (!LOOPBACK.has(row.client_addr ?? '') || !isPostgresProcess(row.pid))
          throw new Error('PostgreSQL is not on this machine, or its backends are not in /proc');
        const now = cpuOrUndefined(row.pid);
        if (now === undefined) continue;
        const bornInWindow = row.backend_start.getTime() >= this.windowStart;
        this.tracked.set(row.pid, { first: bornInWindow ? 0 : now, last: now });
      }
    } catch (error) {
      this.error = errorText(error);
    }
  }

  private sample(): void {
    if (this.ended) return;
    for (const [pid, backend] of this.tracked) backend.last = cpuOrUndefined(pid) ?? backend.last;
  }

  begin(): void {
    this.windowStart = Date.now();
    this.sample();
    for (const backend of this.tracked.values()) backend.first = backend.last;
    this.timer = setInterval(() => {
      this.polling ??= this.discover().then(() => {
        this.sample();
        this.polling = undefined;
      });
    }, POLL_MS);
    this.timer.unref();
  }

  async end(): Promise<PostgresCpu> {
    this.sample();
    this.ended = true;
    clearInterval(this.timer);
    await this.polling;
    const before = new Set(this.tracked.keys());
    await this.discover();
    // Found only now: read now, a few milliseconds after the window.
    for (const [pid, backend] of this.tracked)
      if (!before.has(pid)) backend.last = cpuOrUndefined(pid) ?? backend.last;
    await this.client.end().catch(() => undefined);
    if (this.error) return { error: this.error };
    if (this.tracked.size === 0) return { error: "none of the server's backends was found" };
    let total = 0;
    for (const backend of this.tracked.values()) total += backend.last - backend.first;
    return { cpuMs: total, backends: this.tracked.size };
  }
}

/** Finds the server's backends, to read their CPU time over a window; `undefined` for a server without PostgreSQL. */
export async function watchPostgres(
  url: string | undefined,
  serverPids: readonly number[],
): Promise<PostgresWatch | undefined> {
  if (!url) return undefined;
  let client: Client | undefined;
  try {
    // pg's own reading of the URL (host, port, defaults, PGHOST / PGPORT),
    // which WHATWG `URL` does not share: `postgres://u@/db?host=/run/postgresql`
    // is a Unix socket to pg and has no port to `URL`.
    client = new Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
    client.on('error', () => undefined);
    if (client.host.startsWith('/'))
      throw new Error(
        `PostgreSQL is reached over a Unix socket (${client.host}), not TCP: not measured`,
      );
    await client.connect();
    const watch = new Watch(client, client.port, serverPids);
    await watch.discover();
    return watch;
  } catch (error) {
    await client?.end().catch(() => undefined);
    const failed: PostgresCpu = { error: errorText(error) };
    return { begin: () => undefined, end: () => Promise.resolve(failed) };
  }
}
