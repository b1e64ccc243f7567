import { Logger } from '@nestjs/common';
import { storedMessage } from '@app/contract/message.fixture';
import type { HistoryPage, HistoryRequest } from '@app/messages/messages.service';
import { RoomFeed } from './room-feed';
import type { SseStream } from './sse-stream';

const message = (seq: number) => storedMessage('room', seq);

/** What RoomFeed uses of a stream: the seqs it was sent, in order. */
class RecordingStream {
  readonly sent: number[] = [];
  closed = false;
  /** The code of the error it was ended with. */
  endedWith?: string;

  send(_event: string, _data: unknown, id: number): void {
    this.sent.push(id);
  }
  sendJson(_event: string, _json: string, id: number): void {
    this.sent.push(id);
  }
  /** The backlogs it was asked about. */
  readonly backlogs: number[] = [];

  overflows(waiting: number): boolean {
    this.backlogs.push(waiting);
    return false;
  }
  drained(): Promise<void> {
    return Promise.resolve();
  }
  end(reason?: { code: string }): void {
    this.closed = true;
    this.endedWith = reason?.code;
  }
}

/** Storage holding seqs 1..`lastSeq`, whose reads the test answers when it chooses. */
class Storage {
  lastSeq = 0;
  /** Whether a read sees storage as it was when asked (as a query does), not when answered. */
  asOfRequest = false;
  readonly reads: Array<{ request: HistoryRequest; answer(): void; fail(error?: Error): void }> =
    [];

  readonly readPage = (request: HistoryRequest) => {
    const askedAt = this.lastSeq;
    return new Promise<HistoryPage>((resolve, reject) =>
      this.reads.push({
        request,
        answer: () => {
          const lastSeq = this.asOfRequest ? askedAt : this.lastSeq;
          const since = request.since ?? 0;
          const upTo = Math.min(lastSeq, since + (request.limit ?? 50));
          const items = [];
          for (let seq = since + 1; seq <= upTo; seq += 1) items.push(message(seq));
          resolve({ items, nextCursor: upTo < lastSeq ? upTo : null });
        },
        fail: (error = new Error('Connection terminated unexpectedly')) => reject(error),
      }),
    );
  };

  /** Answers every read, those the answers lead to included. */
  async answerAll(): Promise<void> {
    for (let i = 0; i < 20; i += 1) {
      await flush();
      const read = this.reads.shift();
      if (!read) return;
      read.answer();
    }
  }
}

const flush = () => new Promise((resolve) => setImmediate(resolve));

function setUp(since: number, stored: number) {
  const stream = new RecordingStream();
  const storage = new Storage();
  storage.lastSeq = stored;
  const feed = new RoomFeed(stream as unknown as SseStream, storage.readPage, since);
  const live = (seq: number) => {
    storage.lastSeq = Math.max(storage.lastSeq, seq);
    feed.live(message(seq), JSON.stringify(message(seq)));
  };
  return { stream, storage, feed, live };
}

describe('RoomFeed', () => {
  it('replays what is stored after its start, then goes on live, each message once', async () => {
    const { stream, storage, feed, live } = setUp(2, 5);
    const replayed = feed.replay();
    live(6);
    await storage.answerAll();
    await replayed;
    live(6);
    live(7);
    await flush();
    expect(stream.sent).toEqual([3, 4, 5, 6, 7]);
  });

  it('reads in the messages a live one skips ahead of before it', async () => {
    const { stream, storage, feed, live } = setUp(0, 0);
    const replayed = feed.replay();
    await storage.answerAll();
    await replayed;
    live(4);
    await storage.answerAll();
    expect(stream.sent).toEqual([1, 2, 3, 4]);
  });

  it('tells its position: the start, then the last message sent', async () => {
    const { feed, storage, live } = setUp(2, 3);
    expect(feed.position).toBe(2);
    const replayed = feed.replay();
    await storage.answerAll();
    await replayed;
    expect(feed.position).toBe(3);
    live(4);
    await flush();
    expect(feed.position).toBe(4);
  });

  it('ends the stream when storage fails while it fills a gap', async () => {
    const { stream, storage, feed, live } = setUp(0, 0);
    const replayed = feed.replay();
    await storage.answerAll();
    await replayed;
    live(3);
    await flush();
    storage.reads.shift()?.fail();
    await flush();
    expect(stream.closed).toBe(true);
    expect(stream.endedWith).toBe('UNAVAILABLE');
    expect(stream.sent).toEqual([]);
  });

  it('reads what comes live during its first replay from storage, holding none of it', async () => {
    const { stream, storage, feed, live } = setUp(0, 300);
    const replayed = feed.replay();
    await flush();
    for (let seq = 301; seq <= 305; seq += 1) live(seq);
    await storage.answerAll();
    await replayed;

    expect(stream.backlogs).toEqual([]);
    expect(stream.sent).toEqual(Array.from({ length: 305 }, (_, i) => i + 1));
    live(306);
    await flush();
    expect(stream.sent.at(-1)).toBe(306);
    expect(stream.backlogs).toHaveLength(1);
  });

  it('ends its first replay in a busy room: what comes once the history is read queues behind', async () => {
    const { stream, storage, feed, live } = setUp(0, 10);
    storage.asOfRequest = true;
    let reads = 0;
    const replayed = feed.replay();
    let done = false;
    void replayed.then(() => (done = true));
    // A message comes while each read is under way, faster than the replay could read them.
    for (let seq = 11; seq <= 30; seq += 1) {
      await flush();
      live(seq);
      const read = storage.reads.shift();
      if (read) {
        reads += 1;
        read.answer();
      }
    }
    await storage.answerAll();
    await replayed;

    expect(done).toBe(true);
    expect(reads).toBeLessThanOrEqual(3);
    expect(stream.sent).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
  });

  it('ends the stream with INTERNAL, and logs it, when its replay fails for a bug', async () => {
    const logged = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    const { stream, storage, feed } = setUp(0, 10);
    const replayed = feed.replay();
    await flush();
    storage.reads.shift()?.fail(new TypeError('a bug'));

    await replayed;
    expect(stream.endedWith).toBe('INTERNAL');
    expect(logged).toHaveBeenCalledWith(expect.stringContaining('a bug'));
    logged.mockRestore();
  });

  it('ends the stream, saying so, when storage fails during its first replay', async () => {
    const { stream, storage, feed } = setUp(0, 0);
    storage.lastSeq = 300;
    const replayed = feed.replay();
    await flush();
    storage.reads.shift()?.answer();
    await flush();
    storage.reads.shift()?.fail();

    await expect(replayed).resolves.toBeUndefined();
    expect(stream.closed).toBe(true);
    expect(stream.endedWith).toBe('UNAVAILABLE');
    expect(stream.sent).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
  });

  describe('catching up with messages read for the whole room', () => {
    const caughtUp = async (since: number, page: number[], stored = page.at(-1) ?? 0) => {
      const setup = setUp(since, since);
      const replayed = setup.feed.replay();
      await setup.storage.answerAll();
      await replayed;
      setup.storage.lastSeq = stored;
      setup.feed.catchUpWith(page.map(message));
      await setup.storage.answerAll();
      return setup;
    };

    it('sends what it lacks of them, in order, once', async () => {
      const { stream, feed, live } = await caughtUp(3, [2, 3, 4, 5]);
      live(5);
      live(6);
      await flush();
      expect(stream.sent).toEqual([4, 5, 6]);
      expect(feed.position).toBe(6);
    });

    it('reads the part before them itself when it is further behind', async () => {
      const { stream, storage } = await caughtUp(1, [4, 5]);
      expect(stream.sent).toEqual([2, 3, 4, 5]);
      expect(storage.reads).toEqual([]);
    });

    it('reads storage again once its first replay is done, when a resync came meanwhile', async () => {
      const { stream, storage, feed } = setUp(0, 3);
      const replayed = feed.replay();
      await flush();
      // The replay's one read (1..3) is answered; seq 4 is stored after it, and missed live.
      storage.reads.shift()!.answer();
      storage.lastSeq = 4;
      expect(feed.readAgainUpTo(4)).toBe(true);
      await storage.answerAll();
      await replayed;
      expect(stream.sent).toEqual([1, 2, 3, 4]);
      expect(feed.readAgainUpTo(5)).toBe(false);
    });
  });
});
