import { FULL_CHECK_EVERY, SlowConsumerWatch } from './slow-consumers';
import type { AppServer } from './socket-data';

const LIMIT = 1024;

/** A Socket.IO server whose sockets have the given backlogs, recording which were looked at. */
function fakeServer(backlogs: Record<string, number>, rooms: Record<string, string[]>) {
  const visited: string[] = [];
  const terminated: string[] = [];
  const sockets = new Map(
    Object.entries(backlogs).map(([id, bytes]) => {
      const webSocket = { bufferedAmount: bytes, terminate: () => terminated.push(id) };
      const conn = {
        writeBuffer: [],
        transport: { socket: webSocket },
        close: () => terminated.push(id),
      };
      return [
        id,
        {
          id,
          get conn() {
            visited.push(id);
            return conn;
          },
        },
      ];
    }),
  );
  const adapterRooms = new Map(Object.entries(rooms).map(([room, ids]) => [room, new Set(ids)]));
  const server = { sockets: { sockets, adapter: { rooms: adapterRooms } } } as unknown as AppServer;
  return { server, visited, terminated };
}

describe('SlowConsumerWatch', () => {
  it('checks only the members of the rooms sent to since the last check, each once', () => {
    const { server, visited, terminated } = fakeServer(
      { a: 0, b: 5000, c: 5000, d: 0 },
      { 'chat:1': ['a', 'b'], 'chat:2': ['b', 'd'], 'chat:3': ['c'] },
    );
    const watch = new SlowConsumerWatch();
    watch.sent('chat:1');
    watch.sent('chat:2');
    watch.sent('chat:gone');
    expect(watch.check(server, LIMIT)).toBe(1);
    expect(terminated).toEqual(['b']);
    expect(new Set(visited)).toEqual(new Set(['a', 'b', 'd']));
    expect(visited.filter((id) => id === 'b')).toHaveLength(2); // pendingBytes and drop
  });

  it('looks at nobody while nothing is sent', () => {
    const { server, visited } = fakeServer({ a: 5000 }, { 'chat:1': ['a'] });
    const watch = new SlowConsumerWatch();
    for (let i = 1; i < FULL_CHECK_EVERY; i += 1) expect(watch.check(server, LIMIT)).toBe(0);
    expect(visited).toEqual([]);
  });

  it('checks every connection every FULL_CHECK_EVERY checks, rooms or not', () => {
    const { server, terminated } = fakeServer({ a: 0, lonely: 5000 }, { 'chat:1': ['a'] });
    const watch = new SlowConsumerWatch();
    for (let i = 1; i < FULL_CHECK_EVERY; i += 1) watch.check(server, LIMIT);
    expect(terminated).toEqual([]);
    expect(watch.check(server, LIMIT)).toBe(1);
    expect(terminated).toEqual(['lonely']);
  });

  it('counts queued engine packets and bytes buffered in the WebSocket alike', () => {
    const { server, terminated } = fakeServer({ a: 600 }, { 'chat:1': ['a'] });
    const conn = (
      server.sockets.sockets.get('a') as unknown as { conn: { writeBuffer: unknown[] } }
    ).conn;
    conn.writeBuffer.push({ data: 'x'.repeat(500) });
    const watch = new SlowConsumerWatch();
    watch.sent('chat:1');
    expect(watch.check(server, LIMIT)).toBe(1);
    expect(terminated).toEqual(['a']);
  });

  it('counts queued text in the UTF-8 bytes it goes out as', () => {
    const { server, terminated } = fakeServer({ a: 0 }, { 'chat:1': ['a'] });
    const conn = (
      server.sockets.sockets.get('a') as unknown as { conn: { writeBuffer: unknown[] } }
    ).conn;
    // Fewer UTF-16 units than the limit, three times as many bytes.
    conn.writeBuffer.push({ data: '\u20ac'.repeat(Math.ceil(LIMIT / 2)) });
    const watch = new SlowConsumerWatch();
    watch.sent('chat:1');
    expect(watch.check(server, LIMIT)).toBe(1);
    expect(terminated).toEqual(['a']);
  });
});
