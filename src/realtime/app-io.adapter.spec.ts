import { EventEmitter } from 'node:events';
import type { INestApplicationContext } from '@nestjs/common';
import { of, type Observable } from 'rxjs';
import type { Socket } from 'socket.io';
import { AppIoAdapter } from './app-io.adapter';
import { InSocketOrder } from './in-socket-order.decorator';
// After the adapter, which loads Nest's metadata support; not part of Nest's public API.
import { WebSocketsController } from '@nestjs/websockets/web-sockets-controller';

/** An adapter whose metrics record nothing, and a socket that is a plain emitter. */
function setUp() {
  const app = {
    get: () => ({ observeAck: () => undefined }),
  } as unknown as INestApplicationContext;
  const adapter = new AppIoAdapter(app);
  let sockets = 0;
  const socket = () =>
    Object.assign(new EventEmitter(), { id: `s${++sockets}` }) as unknown as Socket;
  // Nest's flattens a handler's Observable; these handlers return it as it is.
  const transform = (result: unknown) => result as Observable<unknown>;
  const ackOf = (socket: Socket, event: string, payload: unknown) =>
    new Promise((resolve) => socket.emit(event, payload, resolve));
  return { adapter, socket, transform, ackOf };
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
    expect(() => ada.emit('later', {})).not.toThrow();
  });

  it('runs the events marked InSocketOrder one at a time per socket, in the order sent', async () => {
    const { adapter, socket, transform, ackOf } = setUp();
    const events: string[] = [];
    let openGate!: () => void;
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    class Gateway {
      @InSocketOrder()
      slow(_: Socket, data: string) {
        events.push(`start ${data}`);
        return gate.then(() => events.push(`end ${data}`));
      }
      @InSocketOrder()
      quick(_: Socket, data: string) {
        events.push(`quick ${data}`);
        return Promise.resolve();
      }
      free(_: Socket, data: string) {
        events.push(`free ${data}`);
        return Promise.resolve();
      }
    }
    const handlers = (['slow', 'quick', 'free'] as const).map((name) => ({
      message: name,
      methodName: name,
      callback: Gateway.prototype[name] as (this: object, ...args: unknown[]) => unknown,
    }));
    const [ada, bob] = [socket(), socket()];
    for (const client of [ada, bob])
      adapter.bindSharedMessageHandlers(client, handlers, new Gateway(), transform);

    const adaAnswers = [ackOf(ada, 'slow', 'a1'), ackOf(ada, 'quick', 'a2')];
    await ackOf(ada, 'free', 'a3');
    await ackOf(bob, 'quick', 'b1');
    expect(events).toEqual(expect.arrayContaining(['start a1', 'free a3', 'quick b1']));
    expect(events).not.toContain('quick a2');
    openGate();
    await Promise.all(adaAnswers);
    expect(events.slice(-2)).toEqual(['end a1', 'quick a2']);
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
