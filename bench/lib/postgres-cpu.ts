import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import { endianness } from 'node:os';
import { Client } from 'pg';
import { cpuMs } from './proc-stats';

/**
 * The CPU time of a server's PostgreSQL backends over a measured run: work
 * its queries cost that the server's own CPU time does not include.
 *
 * A backend is the server's when its client address and port
 * (`pg_stat_activity`) are the local address and port of one of the server
 * processes' TCP connections to PostgreSQL's port (`/proc/<pid>/fd` and
 * `/proc/<pid>/net/tcp*`), from loopback, and it is a `postgres` process
 * here; its CPU time is read from `/proc/<pid>/stat`. Any other backend
 * (another client's, a remote one whose port happens to be the same) is
 * ignored. Only for a PostgreSQL on this machine reached over TCP: when no
 * backend is the server's, or the connection string names a Unix socket,
 * the result says why nothing was read.
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

/**
 * One text per address, whichever way it was written: IPv4 dotted, an
 * IPv4-mapped IPv6 address as its IPv4 one (a client's IPv4 socket is such
 * an address to a server listening on IPv6), other IPv6 addresses as eight
 * full groups. `undefined` for anything else.
 */
function canonicalAddress(bytes: Buffer): string | undefined {
  if (bytes.length === 4) return [...bytes].join('.');
  if (bytes.length !== 16) return undefined;
  const mapped = bytes.subarray(0, 10).every((b) => b === 0) && bytes.readUInt16BE(10) === 0xffff;
  if (mapped) return canonicalAddress(bytes.subarray(12));
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  return groups.join(':');
}

/** An address as PostgreSQL prints it (`host(client_addr)`), in canonical form. */
export function addressOf(text: string): string | undefined {
  if (isIPv4(text)) return canonicalAddress(Buffer.from(text.split('.').map(Number)));
  if (!isIPv6(text)) return undefined;
  const [head, tail = ''] = text.split('::');
  const parse = (part: string) => {
    const words: number[] = [];
    for (const group of part ? part.split(':') : [])
      if (isIPv4(group)) {
        const [a, b, c, d] = group.split('.').map(Number);
        words.push((a << 8) | b, (c << 8) | d);
      } else words.push(parseInt(group, 16));
    return words;
  };
  const front = parse(head);
  const back = parse(tail);
  const words = [...front, ...new Array<number>(8 - front.length - back.length).fill(0), ...back];
  const bytes = Buffer.alloc(16);
  words.forEach((word, i) => bytes.writeUInt16BE(word, 2 * i));
  return canonicalAddress(bytes);
}

/**
 * An address and port as `/proc/net/tcp*` print them: `0100007F:1F90`, the
 * address as 32-bit words in this machine's byte order, in hex.
 */
export function procEndpointOf(text: string): { address?: string; port: number } {
  const colon = text.lastIndexOf(':');
  const bytes = Buffer.from(text.slice(0, colon), 'hex');
  if (endianness() === 'LE')
    for (let i = 0; i + 4 <= bytes.length; i += 4) bytes.subarray(i, i + 4).reverse();
  return { address: canonicalAddress(bytes), port: parseInt(text.slice(colon + 1), 16) };
}

function endpointKey(address: string, port: number): string {
  return `${address} ${port}`;
}

function isLoopback(address: string): boolean {
  return /^127\./.test(address) || address === '0:0:0:0:0:0:0:1';
}

/** The inodes of the sockets a process holds (`/proc/<pid>/fd/*` → `socket:[inode]`); none if it is gone. */
function socketInodes(pid: number): Set<string> {
  const inodes = new Set<string>();
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return inodes;
  }
  for (const fd of fds) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (match) inodes.add(match[1]);
    } catch {
      // Closed meanwhile.
    }
  }
  return inodes;
}

/**
 * The local ends (`endpointKey`) of a process's TCP connections to
 * `remotePort` (`/proc/<pid>/net/tcp` and `tcp6`).
 */
function localEndsTo(pid: number, remotePort: number): string[] {
  const inodes = socketInodes(pid);
  const ends: string[] = [];
  for (const table of ['tcp', 'tcp6']) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/net/${table}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10 || !inodes.has(fields[9])) continue;
      if (procEndpointOf(fields[2]).port !== remotePort) continue;
      const local = procEndpointOf(fields[1]);
      if (local.address) ends.push(endpointKey(local.address, local.port));
    }
  }
  return ends;
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
  /** Backends found not to be this server's: another client's, or not a local process reached over loopback. */
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
      const ends = new Set(this.serverPids.flatMap((pid) => localEndsTo(pid, this.remotePort)));
      for (const row of unseen) {
        const address = row.client_addr === null ? undefined : addressOf(row.client_addr);
        const ours =
          address !== undefined &&
          isLoopback(address) &&
          ends.has(endpointKey(address, row.client_port)) &&
          isPostgresProcess(row.pid);
        if (!ours) {
          this.foreign.add(row.pid);
          continue;
        }
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
    if (this.tracked.size === 0)
      return {
        error:
          "none of the server's backends was found (only a PostgreSQL on this machine, reached over loopback TCP, is measured)",
      };
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
