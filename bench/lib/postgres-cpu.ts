import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { withPostgres } from './databases';
import { cpuMs } from './proc-stats';

/**
 * The CPU time of a server's PostgreSQL backends over a measured run: work
 * its queries cost that the server's own CPU time does not include. The
 * backends are those whose client port (`pg_stat_activity`) is the local
 * port of one of the server processes' TCP connections to PostgreSQL, read
 * from `/proc`; their CPU time from `/proc/<pid>/stat`. Only for a
 * PostgreSQL on this machine: it must see the connections come from
 * loopback, and each backend must be a `postgres` process here.
 */
export type PostgresCpu =
  | {
      cpuMs: number;
      /** Backends counted; one opened during the run counts from its start. */
      backends: number;
      /** Backends that closed during the run: their CPU time in it is missing. */
      closed: number;
    }
  | { error: string };

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
function localPortsTo(pid: number, remotePort: number): number[] {
  const inodes = socketInodes(pid);
  const ports: number[] = [];
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
      const port = (address: string) => parseInt(address.slice(address.lastIndexOf(':') + 1), 16);
      if (port(fields[2]) === remotePort) ports.push(port(fields[1]));
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

/** The pids of the backends serving `serverPids`' connections to the PostgreSQL at `url`. */
async function backendsOf(url: string, serverPids: readonly number[]): Promise<number[]> {
  const remotePort = Number(new URL(url).port || 5432);
  const ports = serverPids.flatMap((pid) => localPortsTo(pid, remotePort));
  if (ports.length === 0) throw new Error('no connection to PostgreSQL found in /proc');
  const { rows } = await withPostgres(url, (client) =>
    client.query<{ pid: number; client_addr: string | null }>(
      'SELECT pid, host(client_addr) AS client_addr FROM pg_stat_activity WHERE client_port = ANY($1::int[])',
      [ports],
    ),
  );
  if (rows.some((row) => !LOOPBACK.has(row.client_addr ?? '')))
    throw new Error('PostgreSQL is not on this machine (or not reached over loopback)');
  const pids = rows.map((row) => row.pid);
  if (pids.length === 0 || !pids.every(isPostgresProcess))
    throw new Error('the backends are not visible in /proc');
  return pids;
}

function cpuOrUndefined(pid: number): number | undefined {
  try {
    return cpuMs(pid);
  } catch {
    return undefined;
  }
}

export interface PostgresWatch {
  /** Reads the backends' CPU time at the start of the window (synchronous). */
  begin(): void;
  /** Reads it at the end (synchronously, before its first await), then looks for backends opened meanwhile. */
  end(): Promise<PostgresCpu>;
}

/** Finds the server's backends, to read their CPU time over a window; `undefined` for a server without PostgreSQL. */
export async function watchPostgres(
  url: string | undefined,
  serverPids: readonly number[],
): Promise<PostgresWatch | undefined> {
  if (!url) return undefined;
  const errorText = (error: unknown) => (error instanceof Error ? error.message : String(error));
  let known: number[];
  try {
    known = await backendsOf(url, serverPids);
  } catch (error) {
    const failed: PostgresCpu = { error: errorText(error) };
    return { begin: () => undefined, end: () => Promise.resolve(failed) };
  }
  const atStart = new Map<number, number>();
  return {
    begin() {
      for (const pid of known) {
        const ms = cpuOrUndefined(pid);
        if (ms !== undefined) atStart.set(pid, ms);
      }
    },
    async end() {
      let total = 0;
      let closed = 0;
      for (const [pid, start] of atStart) {
        const ms = cpuOrUndefined(pid);
        if (ms === undefined) closed += 1;
        else total += ms - start;
      }
      let now: number[];
      try {
        now = await backendsOf(url, serverPids);
      } catch (error) {
        return { error: errorText(error) };
      }
      const opened = now.filter((pid) => !atStart.has(pid));
      for (const pid of opened) total += cpuOrUndefined(pid) ?? 0;
      return { cpuMs: total, backends: atStart.size - closed + opened.length, closed };
    },
  };
}
