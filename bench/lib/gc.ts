import WebSocket from 'ws';
import { withTimeout } from '../common/clock';
import type { ManagedProcess } from './processes';

const GC_TIMEOUT_MS = 30_000;

/**
 * A full garbage collection in a process started with `inspect`, through
 * its inspector (`HeapProfiler.collectGarbage`): so that memory read after
 * it counts what is alive, not what the last collection happened to leave.
 */
export async function collectGarbage(target: ManagedProcess): Promise<void> {
  const url = target.inspectorUrl();
  if (!url) throw new Error(`${target.name}: no inspector address in its output`);
  const socket = new WebSocket(url);
  try {
    await withTimeout(collectOver(socket), GC_TIMEOUT_MS, `${target.name}: GC did not finish`);
  } finally {
    socket.terminate();
  }
}

function collectOver(socket: WebSocket): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.once('open', () =>
      socket.send(JSON.stringify({ id: 1, method: 'HeapProfiler.collectGarbage' })),
    );
    socket.on('message', (data: Buffer) => {
      const reply = JSON.parse(data.toString('utf8')) as {
        id?: number;
        error?: { message: string };
      };
      if (reply.id !== 1) return;
      if (reply.error) reject(new Error(reply.error.message));
      else resolve();
    });
  });
}
