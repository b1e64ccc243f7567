import type { MessageJson } from '@app/contract/models';
import { ServerEvent } from '@app/contract/events';
import { roomNames } from '@app/contract/room-names';
import { LocalDeliveryBus } from '@app/delivery/delivery-bus';
import {
  DeliveryEffectKind,
  DeliveryService,
  type Delivery,
  type DeliveryEffect,
  type DeliveryListener,
} from '@app/delivery/delivery.service';
import { SlowConsumerWatch } from '@app/realtime/slow-consumers';
import type { AppServer, AppSocket } from '@app/realtime/socket-data';
import type { LiveDelivery } from './live-delivery';
import { type Fence, SocketIoDelivery } from './socket-io.delivery';

const ROOM = '0190c0de-0000-7000-8000-000000000002';
const USER = '0190c0de-0000-7000-8000-000000000003';
const message = (seq: number) => ({ roomId: ROOM, seq }) as MessageJson;

/** Records, per emitted message, which sockets of the room were left out. */
function fakeServer(order: string[]) {
  const sent: Array<{ seq: number; except: string[] }> = [];
  const operator = (except: string[]) => ({
    except: (ids: string | string[]) => operator([...except, ...[ids].flat()]),
    emit: (_event: string, payload: MessageJson) => {
      order.push('emit');
      sent.push({ seq: payload.seq, except });
    },
  });
  const rooms = new Map([
    [roomNames.chat(ROOM), new Set(['rejoining', 'other'])],
    [roomNames.user(USER), new Set(['phone', 'laptop'])],
  ]);
  const sockets = new Map(['rejoining', 'other', 'phone', 'laptop'].map((id) => [id, { id }]));
  const server = {
    local: { to: () => operator([]) },
    sockets: { adapter: { rooms }, sockets },
  } as unknown as AppServer;
  return { server, sent, rooms };
}

describe('SocketIoDelivery', () => {
  let listener: DeliveryListener;
  let deliveredSeq: number;
  let socketDelivery: SocketIoDelivery;
  let fence: Fence;
  let sent: Array<{ seq: number; except: string[] }>;
  let rooms: Map<string, Set<string>>;
  let order: string[];
  const applyEffect = jest.fn((socket: AppSocket, _effect: DeliveryEffect) =>
    order.push(`effect ${socket.id}`),
  );
  const socket = { id: 'rejoining', connected: true, emit: jest.fn() };

  const live = (seq: number) =>
    listener({
      channel: roomNames.chat(ROOM),
      event: ServerEvent.Message,
      payload: message(seq),
    } satisfies Delivery);

  beforeEach(() => {
    socket.emit.mockClear();
    applyEffect.mockClear();
    order = [];
    deliveredSeq = 0;
    const fakeLive = {
      subscribe: (l: DeliveryListener) => {
        listener = l;
        return () => undefined;
      },
      deliveredSeq: () => deliveredSeq,
    } as unknown as LiveDelivery;
    socketDelivery = new SocketIoDelivery(
      fakeLive,
      new SlowConsumerWatch(),
      new DeliveryService(new LocalDeliveryBus()),
    );
    const fake = fakeServer(order);
    sent = fake.sent;
    rooms = fake.rooms;
    socketDelivery.attach(fake.server, applyEffect);
    fence = socketDelivery.fence(socket as unknown as AppSocket, ROOM);
  });

  it('holds live messages back during the join and sends only those after the missed ones', () => {
    live(5);
    live(6);
    deliveredSeq = 6;
    socketDelivery.release(socket as unknown as AppSocket, ROOM, 5, fence);
    expect(sent).toEqual([
      { seq: 5, except: ['rejoining'] },
      { seq: 6, except: ['rejoining'] },
    ]);
    expect(socket.emit.mock.calls).toEqual([[ServerEvent.Message, message(6)]]);

    live(7);
    expect(sent.at(-1)).toEqual({ seq: 7, except: [] });
  });

  it('after the ack, skips what the join already read from storage until the live stream passes it', () => {
    deliveredSeq = 3;
    socketDelivery.release(socket as unknown as AppSocket, ROOM, 6, fence);
    live(4);
    live(5);
    live(6);
    live(7);
    live(8);
    expect(sent).toEqual([
      { seq: 4, except: ['rejoining'] },
      { seq: 5, except: ['rejoining'] },
      { seq: 6, except: ['rejoining'] },
      { seq: 7, except: [] },
      { seq: 8, except: [] },
    ]);
    expect(socket.emit).not.toHaveBeenCalled();
  });

  it('forgets a fence when the socket leaves the room', () => {
    deliveredSeq = 3;
    socketDelivery.release(socket as unknown as AppSocket, ROOM, 6, fence);
    socketDelivery.forget(socket as unknown as AppSocket, ROOM);
    live(4);
    expect(sent).toEqual([{ seq: 4, except: [] }]);
  });

  it('leaves a fence made by a later rejoin to that rejoin', () => {
    socketDelivery.forget(socket as unknown as AppSocket, ROOM);
    const rejoined = socketDelivery.fence(socket as unknown as AppSocket, ROOM);
    deliveredSeq = 3;
    socketDelivery.release(socket as unknown as AppSocket, ROOM, 3, fence);
    live(4);
    expect(sent).toEqual([{ seq: 4, except: ['rejoining'] }]);
    socketDelivery.release(socket as unknown as AppSocket, ROOM, 3, rejoined);
    expect(socket.emit.mock.calls).toEqual([[ServerEvent.Message, message(4)]]);
  });

  it('sends what an answered join still holds before the next join of the room asks where the socket stands', () => {
    const rejoining = socket as unknown as AppSocket;
    live(5);
    deliveredSeq = 5;
    // The first join has answered (lastSeq 4); its release waits for the next turn of the loop.
    socketDelivery.releaseAfterAck(rejoining, ROOM, 4, fence);

    expect(socketDelivery.liveSeqOf(rejoining, ROOM)).toBe(5);
    const rejoined = socketDelivery.fence(rejoining, ROOM);
    live(6);
    deliveredSeq = 6;
    socketDelivery.release(rejoining, ROOM, 5, rejoined);
    expect(socket.emit.mock.calls).toEqual([
      [ServerEvent.Message, message(5)],
      [ServerEvent.Message, message(6)],
    ]);
  });

  it("applies a delivery's effect to each local socket of its channel, after the event", () => {
    const effect = { kind: DeliveryEffectKind.LeaveRoom, userId: USER, roomId: ROOM } as const;
    listener({
      channel: roomNames.user(USER),
      event: ServerEvent.Notification,
      payload: message(0),
      effect,
    } satisfies Delivery);
    expect(order).toEqual(['emit', 'effect phone', 'effect laptop']);
    expect(applyEffect.mock.calls.map(([, applied]) => applied)).toEqual([effect, effect]);
  });

  it('applies no effect for a delivery without one', () => {
    live(1);
    expect(applyEffect).not.toHaveBeenCalled();
  });

  it('encodes nothing for a room no Socket.IO socket of this node is in', () => {
    socketDelivery.forget(socket as unknown as AppSocket, ROOM);
    rooms.clear();
    live(1);
    expect(sent).toEqual([]);
  });
});
