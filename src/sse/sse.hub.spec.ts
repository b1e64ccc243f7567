import type { RoomJson } from '@app/contract/models';
import { roomNames } from '@app/contract/room-names';
import { LocalDeliveryBus } from '@app/delivery/delivery-bus';
import { DeliveryService } from '@app/delivery/delivery.service';
import { SseHub, type SseSubscriber } from './sse.hub';

const MAX_STREAMS_PER_USER = 3;

function room(id: string): RoomJson {
  return {
    id,
    name: id,
    isPrivate: true,
    ownerId: 'owner',
    createdAt: new Date(0).toISOString(),
    lastSeq: 0,
  };
}

/** A hub on an in-process bus, whose streams write what happens to them into one log. */
function setUp() {
  const delivery = new DeliveryService(new LocalDeliveryBus());
  const shutdownSteps: (() => unknown)[] = [];
  const hub = new SseHub(
    delivery,
    { get: () => MAX_STREAMS_PER_USER } as never,
    { connections: { inc: () => undefined, dec: () => undefined } } as never,
    { register: (_phase: string, step: () => unknown) => shutdownSteps.push(step) } as never,
  );
  hub.onModuleInit();
  const log: string[] = [];
  const open = (name: string, userId: string, channel: string): SseSubscriber => {
    let detach: () => void = () => undefined;
    const subscriber: SseSubscriber = {
      userId,
      channel,
      receive: (d) => log.push(`${name} <- ${d.event}`),
      close: () => {
        log.push(`${name} closed`);
        detach();
      },
    };
    detach = hub.attach(subscriber);
    return subscriber;
  };
  const shutdown = () => shutdownSteps.forEach((step) => step());
  return { hub, delivery, log, open, shutdown };
}

describe('SseHub', () => {
  const by = { id: 'owner', username: 'owner' };

  it("ends the user's streams of the room they left, after their personal stream got the notification", () => {
    const { hub, delivery, log, open } = setUp();
    open('bob', 'bob', roomNames.user('bob'));
    open('bob/a', 'bob', roomNames.chat('a'));
    open('bob/a again', 'bob', roomNames.chat('a'));
    open('carol/a', 'carol', roomNames.chat('a'));

    delivery.membershipEnded('bob', room('a'), by);

    expect(log).toEqual(['bob <- notification', 'bob/a closed', 'bob/a again closed']);
    expect(hub.streamCount).toBe(2);
    delivery.messageCreated({ roomId: 'a' } as never);
    expect(log.slice(3)).toEqual(['carol/a <- chat:message']);
  });

  it("keeps the user's other rooms and other users' streams when a membership ends", () => {
    const { hub, delivery, log, open } = setUp();
    open('bob/b', 'bob', roomNames.chat('b'));
    open('carol', 'carol', roomNames.user('carol'));

    delivery.membershipEnded('bob', room('a'), by);

    expect(log).toEqual([]);
    expect(hub.streamCount).toBe(2);
  });

  it("ends every stream of a closed account, personal and room, and no one else's", () => {
    const { hub, delivery, log, open } = setUp();
    open('bob', 'bob', roomNames.user('bob'));
    open('bob/a', 'bob', roomNames.chat('a'));
    open('bob/b', 'bob', roomNames.chat('b'));
    open('carol/a', 'carol', roomNames.chat('a'));

    delivery.accountClosed('bob');

    expect(log).toEqual(['bob <- error', 'bob closed', 'bob/a closed', 'bob/b closed']);
    expect(hub.streamCount).toBe(1);
    expect(hub.channelCount).toBe(1);
  });

  it("gives back the user's allowance for every stream it ends", () => {
    const { hub, delivery, open } = setUp();
    for (let i = 0; i < MAX_STREAMS_PER_USER; i += 1) open(`bob/${i}`, 'bob', roomNames.chat('a'));
    expect(() => open('bob/over', 'bob', roomNames.chat('a'))).toThrow(/Too many/);

    delivery.accountClosed('bob');

    for (let i = 0; i < MAX_STREAMS_PER_USER; i += 1) open(`bob/${i}`, 'bob', roomNames.chat('a'));
    expect(hub.streamCount).toBe(MAX_STREAMS_PER_USER);
  });

  it('closes nothing for a delivery without an effect', () => {
    const { hub, delivery, log, open } = setUp();
    open('bob', 'bob', roomNames.user('bob'));
    open('bob/a', 'bob', roomNames.chat('a'));

    delivery.notify('bob', { type: 'room:invited', room: room('a'), by });

    expect(log).toEqual(['bob <- notification']);
    expect(hub.streamCount).toBe(2);
  });

  it("serializes a delivery's payload once for all the streams of its channel", () => {
    const { delivery, open } = setUp();
    const received: string[] = [];
    for (const name of ['bob', 'carol', 'dave']) {
      const stream = open(name, name, roomNames.chat('a'));
      stream.receive = (_delivery, payloadJson) => received.push(payloadJson());
    }
    const message = { roomId: 'a', seq: 1, text: 'hi' };
    const toJSON = jest.fn(() => message);

    delivery.messageCreated({ ...message, toJSON } as never);

    expect(received).toEqual(Array(3).fill(JSON.stringify(message)));
    expect(toJSON).toHaveBeenCalledTimes(1);
  });

  it('ends every stream on shutdown', () => {
    const { hub, log, open, shutdown } = setUp();
    open('bob', 'bob', roomNames.user('bob'));
    open('carol/a', 'carol', roomNames.chat('a'));

    shutdown();

    expect(log).toEqual(['bob closed', 'carol/a closed']);
    expect(hub.streamCount).toBe(0);
    expect(hub.channelCount).toBe(0);
  });
});
