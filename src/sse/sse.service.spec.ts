import { EventEmitter } from 'node:events';
import type { Response } from 'express';
import type { AuthUser } from '@app/auth/auth-user';
import { AppException } from '@app/common/errors/app.exception';
import { LocalDeliveryBus } from '@app/delivery/delivery-bus';
import { DeliveryService } from '@app/delivery/delivery.service';
import { EventStreamSlots } from './event-stream-slots';
import { SseHub, type StreamSlot } from './sse.hub';
import { SseService } from './sse.service';

const MAX_STREAMS_PER_USER = 2;
const user: AuthUser = {
  id: 'bob',
  username: 'bob',
  tokenExpiresAt: Date.now() + 3_600_000,
  sessionStartedAt: Date.now(),
};

/** What SseStream uses of an Express response, and what was done to it. */
class FakeResponse extends EventEmitter {
  statusCode?: number;
  writableEnded = false;
  writableFinished = false;
  destroyed = false;
  writableLength = 0;
  writableNeedDrain = false;
  readonly req = { method: 'GET' };
  readonly locals = {};
  readonly chunks: string[] = [];

  status(code: number): this {
    this.statusCode = code;
    return this;
  }
  set(): this {
    return this;
  }
  flushHeaders(): void {}
  write(chunk: string): boolean {
    this.chunks.push(chunk);
    return true;
  }
  end(): void {
    this.writableEnded = this.writableFinished = true;
  }
  destroy(): void {
    this.destroyed = true;
  }
  /** The client goes away. */
  leave(): void {
    this.destroyed = true;
    this.emit('close');
  }
}

function setUp() {
  const config = {
    get: (key: string) => (key === 'realtime.maxSseStreamsPerUser' ? MAX_STREAMS_PER_USER : 60_000),
  };
  const metrics = {
    connections: { inc: () => undefined, dec: () => undefined },
    slowConsumersDropped: { inc: () => undefined },
  };
  const node = { draining: false, register: () => undefined };
  const slots = new EventStreamSlots(config as never, { enabled: false } as never);
  const hub = new SseHub(
    new DeliveryService(new LocalDeliveryBus()),
    slots,
    metrics as never,
    node as never,
    { lastSeqsOf: () => Promise.resolve(new Map()) } as never,
    {} as never,
  );
  let accessLost = false;
  const rooms = {
    admit: () =>
      Promise.resolve({
        room: { id: 'room', lastSeq: 0 },
        confirm: () => {
          if (accessLost) throw AppException.notFound('Room not found');
        },
        removedMeanwhile: () => accessLost,
      }),
  };
  const messages = { page: () => Promise.resolve({ items: [], nextCursor: null }) };
  const sse = new SseService(
    hub,
    rooms as never,
    messages as never,
    config as never,
    metrics as never,
  );

  /** Holds the next reservation until `grant()`, so that the test can act while it waits. */
  const holdNextReservation = () => {
    let grant: () => void = () => undefined;
    const reserve = hub.reserve.bind(hub);
    jest.spyOn(hub, 'reserve').mockImplementationOnce(async (userId) => {
      await new Promise<void>((resolve) => (grant = resolve));
      return reserve(userId);
    });
    return () => grant();
  };
  /** How many more slots the user may reserve now; the probes are released again. */
  const allowanceLeft = async () => {
    const reserved: StreamSlot[] = [];
    try {
      for (;;) reserved.push(await hub.reserve(user.id));
    } catch {
      for (const slot of reserved) slot.release();
      return reserved.length;
    }
  };
  const loseAccess = () => (accessLost = true);
  return { sse, hub, node, holdNextReservation, allowanceLeft, loseAccess };
}

/** The account, checked when the stream registers, is still there. */
const accountOpen = () => undefined;

describe('SseService', () => {
  const response = () => new FakeResponse();
  const asResponse = (fake: FakeResponse) => fake as unknown as Response;

  it('opens a stream that holds a slot until the client leaves', async () => {
    const { sse, hub, allowanceLeft } = setUp();
    const client = response();

    await sse.openPersonal(user, accountOpen, asResponse(client));

    expect(client.statusCode).toBe(200);
    expect(client.chunks.join('')).toContain('event: connected');
    expect(await allowanceLeft()).toBe(MAX_STREAMS_PER_USER - 1);
    client.leave();
    expect(hub.streamCount).toBe(0);
    expect(await allowanceLeft()).toBe(MAX_STREAMS_PER_USER);
  });

  it('gives the slot back, opening nothing, when the client left while it was reserved', async () => {
    const { sse, hub, holdNextReservation, allowanceLeft } = setUp();
    const client = response();
    const grant = holdNextReservation();
    const opening = sse.openPersonal(user, accountOpen, asResponse(client));

    client.leave();
    grant();
    await opening;

    expect(client.statusCode).toBeUndefined();
    expect(hub.streamCount).toBe(0);
    expect(await allowanceLeft()).toBe(MAX_STREAMS_PER_USER);
  });

  it('refuses the stream UNAVAILABLE, giving the slot back, when the node began draining while it was reserved', async () => {
    const { sse, hub, node, holdNextReservation, allowanceLeft } = setUp();
    const client = response();
    const grant = holdNextReservation();
    const opening = sse.openPersonal(user, accountOpen, asResponse(client));

    node.draining = true;
    grant();

    await expect(opening).rejects.toMatchObject({ code: 'UNAVAILABLE', retryAfterSeconds: 1 });
    expect(client.statusCode).toBeUndefined();
    expect(hub.streamCount).toBe(0);
    node.draining = false;
    expect(await allowanceLeft()).toBe(MAX_STREAMS_PER_USER);
  });

  it('refuses a room stream whose access was lost while its slot was reserved, giving the slot back', async () => {
    const { sse, hub, holdNextReservation, allowanceLeft, loseAccess } = setUp();
    const client = response();
    const grant = holdNextReservation();
    const opening = sse.openRoom(user, accountOpen, 'room', undefined, asResponse(client));
    await new Promise((resolve) => setImmediate(resolve));

    loseAccess();
    grant();

    await expect(opening).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(client.statusCode).toBeUndefined();
    expect(hub.streamCount).toBe(0);
    expect(await allowanceLeft()).toBe(MAX_STREAMS_PER_USER);
  });

  it('refuses a stream whose account was closed while its slot was reserved, giving the slot back', async () => {
    const { sse, hub, holdNextReservation, allowanceLeft } = setUp();
    const client = response();
    let accountClosed = false;
    const confirmAccount = () => {
      if (accountClosed) throw AppException.unauthorized();
    };
    const grant = holdNextReservation();
    const opening = sse.openPersonal(user, confirmAccount, asResponse(client));

    accountClosed = true;
    grant();

    await expect(opening).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    expect(client.statusCode).toBeUndefined();
    expect(hub.streamCount).toBe(0);
    expect(await allowanceLeft()).toBe(MAX_STREAMS_PER_USER);
  });
});
