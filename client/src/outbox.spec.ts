import type { AckResponse, MessageJson, SendPayload } from './contract';
import { ChatError } from './errors';
import { MAX_INTERNAL_ERRORS, Outbox, type OutboxTransport } from './outbox';

const ROOM = 'room-1';

/**
 * A server that stores by (room, clientMsgId) like the real one, behind a
 * connection the test can cut, and that can be told to lose acks.
 */
class FakeTransport implements OutboxTransport {
  ready = false;
  readonly stored: MessageJson[] = [];
  readonly sent: SendPayload[] = [];
  /** Store the next N messages but never answer (connection dropped before the ack). */
  loseAcks = 0;
  /** Store the next N messages and answer only when `answerHeld` is called. */
  holdAcks = 0;
  /** Answer the next sends with this error. */
  errors: AckResponse<MessageJson>[] = [];
  private readonly waiting: Array<(error: Error) => void> = [];
  private readonly held: Array<() => void> = [];

  send(payload: SendPayload): Promise<AckResponse<MessageJson>> {
    this.sent.push(payload);
    const error = this.errors.shift();
    if (error) return Promise.resolve(error);
    const message = this.store(payload);
    if (this.loseAcks > 0) {
      this.loseAcks -= 1;
      return new Promise((_, reject) => this.waiting.push(reject));
    }
    if (this.holdAcks > 0) {
      this.holdAcks -= 1;
      return new Promise((resolve) => this.held.push(() => resolve({ ok: true, data: message })));
    }
    return Promise.resolve({ ok: true, data: message });
  }

  answerHeld(): void {
    for (const answer of this.held.splice(0)) answer();
  }

  disconnect(): void {
    this.ready = false;
    for (const reject of this.waiting.splice(0)) reject(new Error('socket has been disconnected'));
  }

  private store({ roomId, text, clientMsgId }: SendPayload): MessageJson {
    const existing = this.stored.find((m) => m.clientMsgId === clientMsgId && m.roomId === roomId);
    if (existing) return existing;
    const message: MessageJson = {
      id: `m${this.stored.length + 1}`,
      roomId,
      seq: this.stored.length + 1,
      userId: 'u1',
      username: 'ada',
      text,
      clientMsgId: clientMsgId ?? null,
      createdAt: new Date(0).toISOString(),
    };
    this.stored.push(message);
    return message;
  }
}

const flushPromises = () =>
  new Promise((resolve) =>
    jest.requireActual<typeof import('timers')>('timers').setImmediate(resolve),
  );

describe('Outbox', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('queues while offline and sends everything once connected', async () => {
    const transport = new FakeTransport();
    const outbox = new Outbox(transport);
    const sent = [outbox.send(ROOM, 'one'), outbox.send(ROOM, 'two')];
    await flushPromises();
    expect(transport.sent).toEqual([]);
    expect(outbox.pending.map((p) => p.text)).toEqual(['one', 'two']);

    transport.ready = true;
    outbox.flush();
    const messages = await Promise.all(sent);
    expect(messages.map((m) => m.text)).toEqual(['one', 'two']);
    expect(transport.stored.map((m) => m.text)).toEqual(['one', 'two']);
    expect(outbox.pending).toEqual([]);
  });

  it('stores a message exactly once when the connection drops between send and ack', async () => {
    const transport = new FakeTransport();
    transport.ready = true;
    transport.loseAcks = 1;
    const outbox = new Outbox(transport);
    const sending = outbox.send(ROOM, 'hello');
    await flushPromises();
    transport.disconnect();
    await flushPromises();

    transport.ready = true;
    outbox.flush();
    const message = await sending;
    expect(transport.sent).toHaveLength(2);
    expect(new Set(transport.sent.map((p) => p.clientMsgId)).size).toBe(1);
    expect(transport.stored).toEqual([message]);
  });

  it('resends after an ack timeout while still connected', async () => {
    const transport = new FakeTransport();
    transport.ready = true;
    const outbox = new Outbox(transport);
    let timeouts = 1;
    const send = transport.send.bind(transport);
    transport.send = (payload) => {
      const answer = send(payload);
      return timeouts-- > 0
        ? answer.then(() => Promise.reject(new Error('operation has timed out')))
        : answer;
    };
    const sending = outbox.send(ROOM, 'hi');
    await flushPromises();
    await jest.advanceTimersByTimeAsync(1_000);
    await expect(sending).resolves.toMatchObject({ text: 'hi', seq: 1 });
    expect(transport.sent).toHaveLength(2);
    expect(transport.stored).toHaveLength(1);
  });

  it('keeps the order of a room’s messages across retries', async () => {
    const transport = new FakeTransport();
    transport.ready = true;
    transport.loseAcks = 1;
    const outbox = new Outbox(transport);
    const all = Promise.all(['a', 'b', 'c'].map((text) => outbox.send(ROOM, text)));
    await flushPromises();
    expect(transport.sent.map((p) => p.text)).toEqual(['a']);
    transport.disconnect();
    await flushPromises();
    transport.ready = true;
    outbox.flush();
    await all;
    expect(transport.stored.map((m) => m.text)).toEqual(['a', 'b', 'c']);
  });

  it('rejects on a final error and goes on with the next message', async () => {
    const transport = new FakeTransport();
    transport.ready = true;
    transport.errors.push({
      ok: false,
      error: { code: 'VALIDATION_FAILED', message: 'text must not be empty', details: [] },
    });
    const outbox = new Outbox(transport);
    const rejected = outbox.send(ROOM, ' ');
    const next = outbox.send(ROOM, 'ok');
    await expect(rejected).rejects.toBeInstanceOf(ChatError);
    await expect(rejected).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
    await expect(next).resolves.toMatchObject({ text: 'ok' });
  });

  it('retries a rate-limited message later instead of failing it', async () => {
    const transport = new FakeTransport();
    transport.ready = true;
    transport.errors.push({
      ok: false,
      error: { code: 'RATE_LIMITED', message: 'slow down', details: [] },
    });
    const outbox = new Outbox(transport);
    const sending = outbox.send(ROOM, 'patient');
    await flushPromises();
    expect(transport.stored).toHaveLength(0);
    await jest.advanceTimersByTimeAsync(10_000);
    await expect(sending).resolves.toMatchObject({ text: 'patient' });
  });

  it('rejects a message the server keeps failing on, and sends the room’s next one', async () => {
    const transport = new FakeTransport();
    transport.ready = true;
    const internal: AckResponse<MessageJson> = {
      ok: false,
      error: { code: 'INTERNAL', message: 'Internal server error', details: [] },
    };
    transport.errors.push(...Array.from({ length: MAX_INTERNAL_ERRORS }, () => internal));
    const outbox = new Outbox(transport);
    const failing = outbox.send(ROOM, 'poison');
    const next = outbox.send(ROOM, 'after');
    const outcome = failing.catch((error: unknown) => error);
    await jest.advanceTimersByTimeAsync(60_000);
    expect(await outcome).toMatchObject({ code: 'INTERNAL' });
    await expect(next).resolves.toMatchObject({ text: 'after' });
    expect(transport.sent.filter((sent) => sent.text === 'poison')).toHaveLength(
      MAX_INTERNAL_ERRORS,
    );
  });

  it('retries a message the server failed on fewer times than the limit', async () => {
    const transport = new FakeTransport();
    transport.ready = true;
    transport.errors.push({
      ok: false,
      error: { code: 'INTERNAL', message: 'Internal server error', details: [] },
    });
    const outbox = new Outbox(transport);
    const sending = outbox.send(ROOM, 'once failed');
    await jest.advanceTimersByTimeAsync(10_000);
    await expect(sending).resolves.toMatchObject({ text: 'once failed' });
  });

  it('makes a clientMsgId for an empty one, so that a resend stays one message', async () => {
    const transport = new FakeTransport();
    transport.ready = true;
    transport.loseAcks = 1;
    const outbox = new Outbox(transport);
    const sending = outbox.send(ROOM, 'once', '');
    await flushPromises();
    transport.disconnect();
    await flushPromises();
    transport.ready = true;
    outbox.flush();
    await expect(sending).resolves.toMatchObject({ text: 'once' });
    expect(transport.stored).toHaveLength(1);
    const ids = new Set(transport.sent.map((sent) => sent.clientMsgId));
    expect(transport.sent).toHaveLength(2);
    expect([...ids]).toEqual([expect.stringMatching(/^.{8,}$/)]);
  });

  it('keeps a caller-chosen clientMsgId', async () => {
    const transport = new FakeTransport();
    transport.ready = true;
    const outbox = new Outbox(transport);
    await outbox.send(ROOM, 'x', 'my-id-1');
    expect(transport.sent[0].clientMsgId).toBe('my-id-1');
  });

  describe('discard', () => {
    const discardedWithOneInFlight = async (transport: FakeTransport) => {
      transport.ready = true;
      const outbox = new Outbox(transport);
      const sending = [outbox.send(ROOM, 'in flight'), outbox.send(ROOM, 'queued')];
      await flushPromises();
      expect(transport.sent.map((sent) => sent.text)).toEqual(['in flight']);
      outbox.discard('The client was closed');
      for (const rejected of sending)
        await expect(rejected).rejects.toMatchObject({ code: 'UNAVAILABLE' });
      return outbox;
    };

    it('sends nothing more when the message in flight is answered afterwards', async () => {
      const transport = new FakeTransport();
      transport.holdAcks = 1;
      const outbox = await discardedWithOneInFlight(transport);
      transport.answerHeld();
      await jest.advanceTimersByTimeAsync(30_000);
      expect(transport.sent.map((sent) => sent.text)).toEqual(['in flight']);
      expect(outbox.pending).toEqual([]);
    });

    it('sends nothing more when the message in flight goes unanswered', async () => {
      const transport = new FakeTransport();
      transport.loseAcks = 1;
      const outbox = await discardedWithOneInFlight(transport);
      transport.disconnect();
      transport.ready = true;
      await jest.advanceTimersByTimeAsync(30_000);
      outbox.flush();
      await jest.advanceTimersByTimeAsync(30_000);
      expect(transport.sent.map((sent) => sent.text)).toEqual(['in flight']);
    });

    it('leaves the outbox usable', async () => {
      const transport = new FakeTransport();
      transport.holdAcks = 1;
      const outbox = await discardedWithOneInFlight(transport);
      const next = outbox.send(ROOM, 'next');
      transport.answerHeld();
      await expect(next).resolves.toMatchObject({ text: 'next' });
      expect(transport.sent.map((sent) => sent.text)).toEqual(['in flight', 'next']);
    });
  });
});
