import { Logger, type INestApplicationContext } from '@nestjs/common';
import { createAdapter, type RedisAdapter } from '@socket.io/redis-adapter';
import type { ServerOptions } from 'socket.io';
import { reasonOf } from '@app/common/errors/reason-of';
import { OccasionalWarning } from '@app/common/occasional-warning';
import { RedisService } from '@app/redis/redis.service';
import { AppIoAdapter } from './app-io.adapter';
import type { AppServer } from './socket-data';

/** What the adapter does with each message of its channels; its subscriptions call these by name. */
interface MessageHandlers {
  onmessage(...args: unknown[]): void;
  onrequest(...args: unknown[]): Promise<void>;
}

/**
 * The adapter with its message handlers made safe: a request it cannot read
 * (`{"type":0,"rooms":5}` from another program, or another version) rejects
 * a promise nobody handles, which would end the process, and a broadcast it
 * cannot decode throws into the Redis client. Each is dropped, with a
 * warning at most once a minute.
 */
function guarded(adapter: RedisAdapter, unreadable: OccasionalWarning): RedisAdapter {
  const handlers = adapter as unknown as MessageHandlers;
  const onmessage = handlers.onmessage.bind(adapter);
  const onrequest = handlers.onrequest.bind(adapter);
  const drop = (error: unknown) =>
    unreadable.note(
      (count) => `Ignored ${count} Socket.IO adapter message(s), the last: ${reasonOf(error)}`,
    );
  handlers.onmessage = (...args) => {
    try {
      onmessage(...args);
    } catch (error) {
      drop(error);
    }
  };
  handlers.onrequest = (...args) => onrequest(...args).catch(drop);
  return adapter;
}

/**
 * A client as the adapter sees it, with the failures of `commands` dropped:
 * the adapter starts its publications (a typing event, a request to the
 * other nodes, an answer) and its subscriptions' changes (a namespace made,
 * or closed at shutdown) and never awaits them, so one refused while Redis
 * is away would end the process as an unhandled rejection. Each is dropped
 * instead, with a warning at most once a minute: typing is volatile,
 * requests time out, and the client subscribes again when it reconnects.
 */
export function withCaughtCommands<Client extends object>(
  client: Client,
  commands: readonly string[],
  refused: OccasionalWarning,
): Client {
  const drop = (error: unknown) =>
    refused.note(
      (count) => `Dropped ${count} Socket.IO adapter command(s), the last: ${reasonOf(error)}`,
    );
  const caught = new Map(
    commands.map((command) => {
      const run = Reflect.get(client, command) as (...args: unknown[]) => Promise<unknown>;
      return [command, (...args: unknown[]) => run.apply(client, args).catch(drop)];
    }),
  );
  return new Proxy(client, {
    get(target, property) {
      const wrapped = typeof property === 'string' ? caught.get(property) : undefined;
      if (wrapped) return wrapped;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? (value as () => unknown).bind(target) : value;
    },
  });
}

/** What the adapter starts on its subscriber client. */
const SUBSCRIPTION_COMMANDS = ['subscribe', 'pSubscribe', 'unsubscribe', 'pUnsubscribe'];

/**
 * The Socket.IO server of a node among several: the Redis adapter makes the
 * nodes one Socket.IO cluster (rooms, broadcasts and socket operations such
 * as disconnecting a user everywhere). Connected once, before `listen`.
 */
export class RedisIoAdapter extends AppIoAdapter {
  private adapterConstructor?: ReturnType<typeof createAdapter>;

  constructor(app: INestApplicationContext) {
    super(app);
  }

  async connect(): Promise<void> {
    const redis = this.app.get(RedisService, { strict: false });
    await redis.connect();
    const logger = new Logger(RedisIoAdapter.name);
    const refused = new OccasionalWarning(logger);
    const publisher = withCaughtCommands(redis.client, ['publish'], refused);
    const subscriber = withCaughtCommands(redis.subscriber, SUBSCRIPTION_COMMANDS, refused);
    const createRedisAdapter = createAdapter(publisher, subscriber, {
      key: redis.key('socket.io'),
    });
    // Socket.IO builds its adapter with `new`, which an arrow function refuses.
    const unreadable = new OccasionalWarning(logger);
    this.adapterConstructor = function guardedAdapter(nsp: unknown) {
      return guarded(createRedisAdapter(nsp), unreadable);
    };
  }

  override createIOServer(port: number, options?: Partial<ServerOptions>): AppServer {
    if (!this.adapterConstructor)
      throw new Error('RedisIoAdapter.connect() must complete before the server starts');
    const server = super.createIOServer(port, options);
    server.adapter(this.adapterConstructor);
    return server;
  }
}
