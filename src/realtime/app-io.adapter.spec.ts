import { EventEmitter } from 'node:events';
import type { INestApplicationContext } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { of, type Observable } from 'rxjs';
import type { Socket } from 'socket.io';
import { AppIoAdapter } from './app-io.adapter';
import { AfterSocketOrder, InSocketOrder } from './in-socket-order.decorator';
// After the adapter, which loads Nest's metadata support; not part of Nest's public API.
import { WebSocketsController } from '@nestjs/websockets/web-sockets-controller';

/** An adapter whose metrics record nothing, with 1 MiB for waiting events, and a socket that is a plain emitter. */
function setUp() {
  const app = {
    get: (token: unknown) =>
      token === ConfigService ? { get: () => 1024 * 1024 } : { observeAck: () => undefined },
  } as unknown as INestApplicationContext;
  const adapter = new AppIoAdapter(app);
  let sockets = 0;
  const socket = () => {
    const anyListeners: unknown[] = [];
    return Object.assign(new EventEmitter(), {
      id: `s${++sockets}`,
      connected: true,
      onAny: (listener: unknown) => anyListeners.push(listener),
      listenersAny: () => anyListeners,
    }) as unknown as Socket;
  };
  // Nest's flattens a handler's Observable; these handlers return it as it is.
  const transform = (result: unknown) => result as Observable<unknown>;
  const ackOf = (socket: Socket, event: string, payload: unknown) =>
    new Promise((resolve) => socket.emit(event, payload, resolve));
  return { adapter, socket, transform, ackOf };
}

const byRoom = (payload: unknown) => (payload as { room: string }).room;

/** A promise a test resolves when it chooses. */
function gated() {
  let openGate!: () => void;
  const gate = new Promise<void>((resolve) => (openGate = resolve));
  return { gate, openGate };
}

/** The handlers Nest would hand over for these methods of a gateway class, named after them. */
function handlersOf<G extends object>(gateway: { prototype: G }, names: Array<keyof G & string>) {
  return names.map((name) => ({
    message: name,
    methodName: name,
    callback: gateway.prototype[name] as (this: object, ...args: unknown[]) => unknown,
  }));
}

describe('AppIoAdapter dispatch', () => {
  it('gives every socket the same listener, which passes the socket to the unbound handler', async () => {
    const { adapter, socket, transform, ackOf } = setUp();
    const gateway = { name: 'gateway' };
    const calls: unknown[] = [];
    const handler = {
      message: 'echo',
      methodName: 'echo',
      callback(this: object, client: Socket, data: unknown) {
        calls.push({ gateway: this, client, data });
        return Promise.resolve({ echoed: data });
      },
    };
    const [ada, bob] = [socket(), socket()];
    adapter.bindSharedMessageHandlers(ada, [handler], gateway, transform);
    adapter.bindSharedMessageHandlers(bob, [handler], gateway, transform);

    expect(ada.listeners('echo')[0]).toBe(bob.listeners('echo')[0]);
    expect(await ackOf(bob, 'echo', 'hi')).toEqual({ ok: true, data: { echoed: 'hi' } });
    expect(calls).toEqual([{ gateway, client: bob, data: 'hi' }]);
  });

  it('answers the same way when Nest binds each handler to its socket (unpatched)', async () => {
    const { adapter, socket, transform, ackOf } = setUp();
    const ada = socket();
    const bound = (data: unknown) => Promise.resolve({ echoed: data });
    adapter.bindMessageHandlers(
      ada,
      [{ message: 'echo', methodName: 'echo', callback: bound, isAckHandledManually: false }],
      transform,
    );

    expect(await ackOf(ada, 'echo', 'hi')).toEqual({ ok: true, data: { echoed: 'hi' } });
  });

  it('answers an Observable result through the transform, and nothing without an ack', async () => {
    const { adapter, socket, transform, ackOf } = setUp();
    const ada = socket();
    const handler = { message: 'later', methodName: 'later', callback: () => of('done') };
    adapter.bindSharedMessageHandlers(ada, [handler], {}, transform);

    expect(await ackOf(ada, 'later', {})).toEqual({ ok: true, data: 'done' });
    ada.emit('later', {});
    const sentBack = jest.spyOn(ada, 'emit');
    await new Promise(setImmediate);
    expect(sentBack).not.toHaveBeenCalled();
  });

  it('runs the events marked InSocketOrder one at a time per socket and key, each acked before the next', async () => {
    const { adapter, socket, transform } = setUp();
    const events: string[] = [];
    const { gate, openGate } = gated();
    class Gateway {
      @InSocketOrder(byRoom)
      slow(_: Socket, { name }: { name: string }) {
        events.push(`start ${name}`);
        return gate.then(() => events.push(`end ${name}`));
      }
      @InSocketOrder(byRoom)
      quick(_: Socket, { name }: { name: string }) {
        events.push(`quick ${name}`);
        return Promise.resolve();
      }
      free(_: Socket, { name }: { name: string }) {
        events.push(`free ${name}`);
        return Promise.resolve();
      }
    }
    const handlers = handlersOf(Gateway, ['slow', 'quick', 'free']);
    const [ada, bob] = [socket(), socket()];
    for (const client of [ada, bob])
      adapter.bindSharedMessageHandlers(client, handlers, new Gateway(), transform);
    const send = (client: Socket, event: string, room: string, name: string) =>
      new Promise((resolve) =>
        client.emit(event, { room, name }, () => {
          events.push(`ack ${name}`);
          resolve(undefined);
        }),
      );

    const held = [send(ada, 'slow', 'r1', 'a1'), send(ada, 'quick', 'r1', 'a2')];
    await send(ada, 'quick', 'r2', 'a3');
    await send(ada, 'free', 'r1', 'a4');
    await send(bob, 'quick', 'r1', 'b1');
    expect(events).toEqual(expect.arrayContaining(['start a1', 'quick a3', 'free a4', 'quick b1']));
    expect(events).not.toContain('quick a2');
    openGate();
    await Promise.all(held);
    expect(events.slice(-4)).toEqual(['end a1', 'ack a1', 'quick a2', 'ack a2']);
  });

  it('runs the events marked AfterSocketOrder behind the ordered ones sent before them, holding no one', async () => {
    const { adapter, socket, transform } = setUp();
    const events: string[] = [];
    const { gate, openGate } = gated();
    class Gateway {
      @InSocketOrder(byRoom)
      join(_: Socket, { name }: { name: string }) {
        events.push(`join ${name}`);
        return gate.then(() => events.push(`joined ${name}`));
      }
      @AfterSocketOrder(byRoom)
      post(_: Socket, { name }: { name: string }) {
        events.push(`post ${name}`);
        return name === 'slow' ? new Promise(() => undefined) : Promise.resolve();
      }
    }
    const handlers = handlersOf(Gateway, ['join', 'post']);
    const ada = socket();
    adapter.bindSharedMessageHandlers(ada, handlers, new Gateway(), transform);
    const send = (event: string, room: string, name: string) =>
      new Promise((resolve) => ada.emit(event, { room, name }, resolve));

    const joining = send('join', 'r1', 'j1');
    const posted = [send('post', 'r1', 'p1'), send('post', 'r1', 'p2')];
    await send('post', 'r2', 'other room');
    expect(events.sort()).toEqual(['join j1', 'post other room']);

    openGate();
    await Promise.all([joining, ...posted]);
    expect(events.slice(2)).toEqual(['joined j1', 'post p1', 'post p2']);

    // One that never answers holds neither the next of its kind nor a join.
    void send('post', 'r1', 'slow');
    await send('post', 'r1', 'p3');
    await send('join', 'r1', 'j2');
    expect(events.slice(-4)).toEqual(['post slow', 'post p3', 'join j2', 'joined j2']);
  });

  it('does not run an ordered event whose socket has gone by its turn', async () => {
    const { adapter, socket, transform } = setUp();
    const ran: string[] = [];
    const { gate, openGate } = gated();
    class Gateway {
      @InSocketOrder()
      step(_: Socket, name: string) {
        ran.push(name);
        return gate;
      }
    }
    const ada = socket();
    const handler = {
      message: 'step',
      methodName: 'step',
      callback: Gateway.prototype.step as (this: object, ...args: unknown[]) => unknown,
    };
    adapter.bindSharedMessageHandlers(ada, [handler], new Gateway(), transform);
    ada.emit('step', 'first', () => undefined);
    ada.emit('step', 'second', () => undefined);
    await Promise.resolve();
    (ada as { connected: boolean }).connected = false;
    openGate();
    await new Promise((resolve) => setImmediate(resolve));
    expect(ran).toEqual(['first']);
  });

  it("is handed the gateway's handlers unbound by Nest as patched", () => {
    const { adapter, socket } = setUp();
    const shared = jest.spyOn(adapter, 'bindSharedMessageHandlers').mockReturnValue();
    const controller = { config: { getIoAdapter: () => adapter } };
    const handlers = [
      { message: 'echo', methodName: 'echo', callback: () => of({}), isAckHandledManually: false },
    ];
    const gateway = {};
    const ada = socket();

    WebSocketsController.prototype.subscribeMessages.call(controller, handlers, ada, gateway);

    expect(shared).toHaveBeenCalledWith(ada, handlers, gateway, expect.any(Function));
  });
});
