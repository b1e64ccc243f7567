import fc from 'fast-check';
import type { ErrorBody } from './contract';
import { ChatError } from './errors';
import { RoomFeed, type MessagePage } from './room-feed';
import { storedMessage } from './test-fixtures';

const ROOM = '0190b0b0-0000-7000-8000-000000000001';

const message = (seq: number) => storedMessage(ROOM, seq);

const range = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => message(from + i));

/** A REST history of `stored` messages, served in pages of `pageSize`. */
function history(stored: number, pageSize = 200) {
  const calls: number[] = [];
  const fetchAfter = (_roomId: string, since: number): Promise<MessagePage> => {
    calls.push(since);
    const items = range(since + 1, Math.min(stored, since + pageSize));
    const last = items.at(-1)?.seq;
    return Promise.resolve({
      items,
      nextCursor: last !== undefined && last < stored ? last : null,
    });
  };
  return { fetchAfter, calls };
}

/**
 * A REST history whose size may change while a request is under way: a page
 * holds what was stored when the request arrived, and the first answer is
 * held back until `answerFirst` is called (a response slowed by an outage).
 */
function slowFirstHistory(stored: { count: number }) {
  const calls: number[] = [];
  let answerFirst!: () => void;
  const firstHeld = new Promise<void>((resolve) => (answerFirst = resolve));
  const fetchAfter = async (_roomId: string, since: number): Promise<MessagePage> => {
    calls.push(since);
    const page = { items: range(since + 1, stored.count), nextCursor: null };
    if (calls.length === 1) await firstHeld;
    return page;
  };
  return { fetchAfter, calls, answerFirst };
}

function feed(options: { since?: number; stored?: number; pageSize?: number } = {}) {
  const delivered: number[] = [];
  const rest = history(options.stored ?? 0, options.pageSize);
  const instance = new RoomFeed({
    roomId: ROOM,
    since: options.since,
    deliver: (m) => delivered.push(m.seq),
    fetchAfter: rest.fetchAfter,
  });
  return { feed: instance, delivered, calls: rest.calls };
}

const seqs = (from: number, to: number) => range(from, to).map((m) => m.seq);

/** A feed at seq 5 over the given REST history, and what it delivered. */
function feedOver(fetchAfter: (roomId: string, since: number) => Promise<MessagePage>) {
  const delivered: number[] = [];
  const f = new RoomFeed({
    roomId: ROOM,
    since: 5,
    deliver: (m) => delivered.push(m.seq),
    fetchAfter,
  });
  return { f, delivered };
}

describe('RoomFeed', () => {
  it('delivers missed messages, then live ones, in order', async () => {
    const { feed: f, delivered } = feed({ since: 3 });
    f.beginSync();
    await f.endSync({ missed: range(4, 6), truncated: false });
    await f.receive(message(7));
    expect(delivered).toEqual(seqs(4, 7));
  });

  it('holds live messages that arrive before the join ack and drops their duplicates', async () => {
    const { feed: f, delivered, calls } = feed({ since: 3 });
    f.beginSync();
    await f.receive(message(6));
    await f.receive(message(7));
    expect(delivered).toEqual([]);
    await f.endSync({ missed: range(4, 6), truncated: false });
    expect(delivered).toEqual(seqs(4, 7));
    expect(calls).toEqual([]);
  });

  it('drops duplicates and anything at or before the last seq', async () => {
    const { feed: f, delivered } = feed({ since: 5 });
    f.beginSync();
    await f.endSync({ missed: [message(6), message(6), message(5), message(4)], truncated: false });
    await f.receive(message(6));
    await f.receive(message(7));
    await f.receive(message(7));
    expect(delivered).toEqual([6, 7]);
  });

  it('fills a gap in the live stream from REST', async () => {
    const { feed: f, delivered, calls } = feed({ since: 2, stored: 9 });
    f.beginSync();
    await f.endSync({ missed: [], truncated: false });
    await f.receive(message(3));
    await f.receive(message(6));
    expect(calls).toEqual([3]);
    expect(delivered).toEqual(seqs(3, 9));
  });

  it('leaves gaps to the join ack while a join is in flight', async () => {
    const { feed: f, delivered, calls } = feed({ since: 2, stored: 10 });
    f.beginSync();
    await f.receive(message(9));
    expect(calls).toEqual([]);
    await f.endSync({ missed: range(3, 9), truncated: false });
    expect(calls).toEqual([]);
    expect(delivered).toEqual(seqs(3, 9));
  });

  it('pages the rest over REST when the join ack is truncated', async () => {
    const { feed: f, delivered, calls } = feed({ since: 0, stored: 2_500, pageSize: 200 });
    f.beginSync();
    await f.receive(message(2_500));
    await f.endSync({ missed: range(1, 1_000), truncated: true });
    expect(delivered).toEqual(seqs(1, 2_500));
    expect(calls[0]).toBe(1_000);
    expect(calls).toHaveLength(8);
  });

  it('starts at the room’s newest seq when the application gave none', async () => {
    const { feed: f, delivered } = feed({ stored: 0 });
    f.beginSync();
    await f.receive(message(43));
    await f.endSync({ roomLastSeq: 42, missed: [], truncated: false });
    await f.receive(message(44));
    expect(delivered).toEqual([43, 44]);
  });

  it('drops a live message held before the first ack when the ack puts the position at or past it', async () => {
    const { feed: f, delivered } = feed({ stored: 7 });
    f.beginSync();
    await f.receive(message(5));
    await f.endSync({ roomLastSeq: 5, missed: [], truncated: false });
    expect(delivered).toEqual([]);
    expect(f.waiting).toBe(0);
    await f.receive(message(8));
    expect(delivered).toEqual([6, 7, 8]);
  });

  it('resumes from the room’s end when its position is past it, as the server does', async () => {
    const { feed: f, delivered } = feed({ since: 50, stored: 1 });
    f.beginSync();
    await f.endSync({ roomLastSeq: 1, missed: [], truncated: false });
    expect(f.since).toBe(1);
    await f.receive(message(2));
    expect(delivered).toEqual([2]);
  });

  it('keeps its position when the join read the room’s end before messages it delivered since', async () => {
    const { feed: f, delivered } = feed({ since: 10, stored: 12 });
    f.beginSync();
    await f.receive(message(11));
    await f.endSync({ roomLastSeq: 10, missed: [message(11)], truncated: false });
    await f.receive(message(12));
    expect(delivered).toEqual([11, 12]);
  });

  it('never moves its position backwards', async () => {
    const { feed: f } = feed({ stored: 9 });
    const positions: Array<number | undefined> = [];
    f.beginSync();
    for (const seq of [4, 5]) await f.receive(message(seq));
    await f.endSync({ roomLastSeq: 6, missed: [], truncated: false });
    positions.push(f.since);
    await f.receive(message(9));
    positions.push(f.since);
    expect(positions).toEqual([6, 9]);
  });

  it('catches up to the end when asked while a fill that read an older end is under way', async () => {
    const stored = { count: 8 };
    const rest = slowFirstHistory(stored);
    const { f, delivered } = feedOver(rest.fetchAfter);
    const gapFill = f.receive(message(8));
    // An outage: more is posted, and the re-join's ack is truncated.
    stored.count = 1_500;
    f.beginSync();
    const resync = f.endSync({ roomLastSeq: 1_500, missed: range(6, 1_005), truncated: true });
    rest.answerFirst();
    await Promise.all([gapFill, resync]);
    expect(f.since).toBe(1_500);
    expect(delivered).toEqual(seqs(6, 1_500));
    expect(rest.calls).toEqual([5, 1_005]);
  });

  it('delivers nothing a fill under way reads once closed, and reports no failure', async () => {
    const rest = slowFirstHistory({ count: 8 });
    const { f, delivered } = feedOver(rest.fetchAfter);
    const gapFill = f.receive(message(8));
    f.close();
    rest.answerFirst();
    await gapFill;
    expect(delivered).toEqual([]);

    const failing = feedOver(() => Promise.reject(new Error('down'))).f;
    const failedFill = failing.receive(message(8));
    failing.close();
    await expect(failedFill).resolves.toBeUndefined();
  });

  it('stops delivering a run of missed messages once a listener closes it', async () => {
    const delivered: number[] = [];
    const f: RoomFeed = new RoomFeed({
      roomId: ROOM,
      since: 100,
      deliver: (m) => {
        delivered.push(m.seq);
        if (m.seq === 110) f.close();
      },
      fetchAfter: history(0).fetchAfter,
    });
    f.beginSync();
    await f.endSync({ missed: range(101, 150), truncated: false });
    expect(delivered).toEqual(seqs(101, 110));
  });

  it('keeps what it holds when a fill fails, and completes on the next trigger', async () => {
    let failing = true;
    const delivered: number[] = [];
    const rest = history(8);
    const f = new RoomFeed({
      roomId: ROOM,
      since: 2,
      deliver: (m) => delivered.push(m.seq),
      fetchAfter: (roomId, since) =>
        failing ? Promise.reject(new Error('down')) : rest.fetchAfter(roomId, since),
    });
    await expect(f.receive(message(5))).rejects.toThrow('down');
    expect(delivered).toEqual([]);
    f.beginSync();
    failing = false;
    await expect(f.endSync({ missed: [], truncated: false })).resolves.toBeUndefined();
    expect(delivered).toEqual(seqs(3, 8));
  });

  describe('when a fill fails', () => {
    afterEach(() => jest.useRealTimers());

    /** A feed at seq 2 of 8 stored messages, whose first `failures` fetches fail. */
    function failingFirst(failures: number) {
      jest.useFakeTimers();
      const delivered: number[] = [];
      const caughtUp: number[] = [];
      const rest = history(8);
      let failed = 0;
      const f = new RoomFeed({
        roomId: ROOM,
        since: 2,
        deliver: (m) => delivered.push(m.seq),
        fetchAfter: (roomId, since) => {
          if (failed >= failures) return rest.fetchAfter(roomId, since);
          failed += 1;
          return Promise.reject(new Error('down'));
        },
        fillRetry: { baseMs: 1_000, capMs: 1_000 },
        caughtUp: () => caughtUp.push(delivered.length),
      });
      return { f, delivered, calls: rest.calls, caughtUp };
    }

    it('says once when it has caught up again, after the last message it lacked', async () => {
      const { f, delivered, caughtUp } = failingFirst(2);
      f.beginSync();
      await expect(f.endSync({ missed: [], truncated: true })).rejects.toThrow('down');
      // Two retries, the first failing, each within the 1 s cap.
      await jest.advanceTimersByTimeAsync(2_002);
      await f.receive(message(9));

      expect(delivered).toEqual(seqs(3, 9));
      expect(caughtUp).toEqual([6]);
    });

    it('has caught up when a join brings everything it lacked, and fetches nothing more', async () => {
      const { f, delivered, caughtUp, calls } = failingFirst(1);
      f.beginSync();
      await expect(f.endSync({ missed: [], truncated: true })).rejects.toThrow('down');
      f.beginSync();
      await f.endSync({ missed: range(3, 8), truncated: false });
      await jest.advanceTimersByTimeAsync(2_000);

      expect(delivered).toEqual(seqs(3, 8));
      expect(caughtUp).toEqual([6]);
      expect(calls).toEqual([]);
    });

    it('says once it has caught up when a join does so while its retry is under way and fails', async () => {
      jest.useFakeTimers();
      const fetches: Array<(error: Error) => void> = [];
      const caughtUp: string[] = [];
      const f = new RoomFeed({
        roomId: ROOM,
        since: 2,
        deliver: () => undefined,
        fetchAfter: () => new Promise((_, reject) => fetches.push(reject)),
        fillRetry: { baseMs: 1_000, capMs: 1_000 },
        caughtUp: () => caughtUp.push('caught up'),
      });
      f.beginSync();
      const first = f.endSync({ missed: [], truncated: true });
      fetches[0](new Error('down'));
      await expect(first).rejects.toThrow('down');
      await jest.advanceTimersByTimeAsync(1_001);
      expect(fetches).toHaveLength(2);

      f.beginSync();
      await f.endSync({ missed: range(3, 8), truncated: false });
      fetches[1](new Error('down again'));
      await jest.advanceTimersByTimeAsync(5_000);

      expect(caughtUp).toEqual(['caught up']);
      expect(fetches).toHaveLength(2);
      await f.receive(message(9));
      expect(caughtUp).toEqual(['caught up']);
    });

    it('says nothing of catching up when no fill had failed', async () => {
      const { f, delivered, caughtUp } = failingFirst(0);
      f.beginSync();
      await f.endSync({ missed: [], truncated: true });
      await f.receive(message(9));

      expect(delivered).toEqual(seqs(3, 9));
      expect(caughtUp).toEqual([]);
    });

    it('tries a catch-up again by itself, with backoff, until it succeeds', async () => {
      const { f, delivered } = failingFirst(2);
      f.beginSync();
      await expect(f.endSync({ missed: [], truncated: true })).rejects.toThrow('down');
      expect(delivered).toEqual([]);

      // Each retry waits at most the 1 s cap (full jitter: anywhere up to it).
      await jest.advanceTimersByTimeAsync(2_002);

      expect(delivered).toEqual(seqs(3, 8));
    });

    it('waits out its backoff while live messages keep coming, and reports the failure once', async () => {
      const { f, delivered, calls } = failingFirst(1);
      await expect(f.receive(message(5))).rejects.toThrow('down');

      for (let seq = 6; seq <= 8; seq += 1) await f.receive(message(seq));
      expect(calls).toEqual([]);

      await jest.advanceTimersByTimeAsync(1_001);
      expect(calls).toEqual([2]);
      expect(delivered).toEqual(seqs(3, 8));
    });

    it('reports no failure of its own retries, live messages arriving during one included', async () => {
      jest.useFakeTimers();
      const fetches: Array<(error: Error) => void> = [];
      const f = new RoomFeed({
        roomId: ROOM,
        since: 2,
        deliver: () => undefined,
        fetchAfter: () => new Promise<MessagePage>((_resolve, reject) => fetches.push(reject)),
        fillRetry: { baseMs: 1_000, capMs: 1_000 },
      });
      const first = f.receive(message(5));
      fetches[0](new Error('down'));
      await expect(first).rejects.toThrow('down');

      await jest.advanceTimersByTimeAsync(1_001);
      expect(fetches).toHaveLength(2);
      const duringRetry = f.receive(message(6));
      fetches[1](new Error('still down'));

      await expect(duringRetry).resolves.toBeUndefined();
      f.close();
    });

    it('closes and says so, trying no more, when the room is no longer the user’s', async () => {
      jest.useFakeTimers();
      const lost: ErrorBody[] = [];
      let calls = 0;
      const gone: ErrorBody = { code: 'NOT_FOUND', message: 'Room not found', details: [] };
      const f = new RoomFeed({
        roomId: ROOM,
        since: 2,
        deliver: () => undefined,
        fetchAfter: () => {
          calls += 1;
          return Promise.reject(new ChatError(gone, 404));
        },
        lost: (error) => lost.push(error),
      });
      await f.receive(message(5));
      await jest.advanceTimersByTimeAsync(60_000);
      await f.receive(message(6));

      expect(lost).toEqual([gone]);
      expect(calls).toBe(1);
    });

    it('tries again after a bare 404 or 403 (a proxy’s, a login wall’s), which says nothing of the room', async () => {
      jest.useFakeTimers();
      const lost: ErrorBody[] = [];
      const rest = history(8);
      let refusals = 0;
      const delivered: number[] = [];
      const f = new RoomFeed({
        roomId: ROOM,
        since: 2,
        deliver: (m) => delivered.push(m.seq),
        fetchAfter: (roomId, since) => {
          if (refusals++ >= 2) return rest.fetchAfter(roomId, since);
          const [status, code] =
            refusals === 1 ? [404, 'NOT_FOUND' as const] : [403, 'FORBIDDEN' as const];
          const made: ErrorBody = { code, message: `HTTP ${status}`, details: [] };
          return Promise.reject(new ChatError(made, status, false));
        },
        fillRetry: { baseMs: 1_000, capMs: 1_000 },
        lost: (error) => lost.push(error),
      });
      await expect(f.receive(message(8))).rejects.toThrow('HTTP 404');
      await jest.advanceTimersByTimeAsync(2_002);

      expect(lost).toEqual([]);
      expect(delivered).toEqual(seqs(3, 8));
    });

    it('stops trying once closed', async () => {
      const { f, calls } = failingFirst(1);
      await expect(f.receive(message(5))).rejects.toThrow('down');

      f.close();
      await jest.advanceTimersByTimeAsync(60_000);

      expect(calls).toEqual([]);
    });
  });

  it('delivers any arrival order exactly once, in seq order', async () => {
    // Every message once, some twice, in any order; some in the join's answer, some live before it.
    const arrivals = [...range(1, 30), ...range(10, 20)];
    await fc.assert(
      fc.asyncProperty(
        fc.shuffledSubarray(arrivals, { minLength: arrivals.length }),
        fc.integer({ min: 0, max: arrivals.length }),
        fc.integer({ min: 0, max: arrivals.length }),
        async (shuffled, missedCount, liveBeforeAnswer) => {
          const { feed: f, delivered } = feed({ since: 0, stored: 30 });
          f.beginSync();
          const [missed, live] = [shuffled.slice(0, missedCount), shuffled.slice(missedCount)];
          for (const m of live.slice(0, liveBeforeAnswer)) await f.receive(m);
          await f.endSync({ missed, truncated: false });
          for (const m of live.slice(liveBeforeAnswer)) await f.receive(m);
          expect(delivered).toEqual(seqs(1, 30));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('aborts the fill under way when closed', () => {
    const signals: AbortSignal[] = [];
    const instance = new RoomFeed({
      roomId: ROOM,
      since: 5,
      deliver: () => undefined,
      fetchAfter: (_roomId, _since, signal) => {
        signals.push(signal);
        return new Promise<MessagePage>(() => undefined);
      },
    });
    void instance.receive(message(9));
    expect(signals.map((signal) => signal.aborted)).toEqual([false]);
    instance.close();
    expect(signals.map((signal) => signal.aborted)).toEqual([true]);
  });
});
