import { SetMetadata } from '@nestjs/common';

const IN_SOCKET_ORDER = 'realtime:in-socket-order';

/** What events must stay in order with: those of the same socket and the same key. */
export type OrderKey = (payload: unknown) => string;

/**
 * `turn`: the event takes its turn, and later ones of its key wait for it.
 * `after`: the event waits for those queued before it, and holds no one.
 */
export interface SocketOrder {
  key: OrderKey;
  mode: 'turn' | 'after';
}

const oneOrder: OrderKey = () => '';

/**
 * Socket.IO events so marked run one at a time per socket and key, in the
 * order the client sent them, each start to finish (guards, pipes, handler,
 * ack): one waiting on a guard is not overtaken by the next. Events of other
 * keys (other rooms) run side by side. An event whose socket has gone by its
 * turn does not run.
 */
export const InSocketOrder = (key: OrderKey = oneOrder) =>
  SetMetadata(IN_SOCKET_ORDER, { key, mode: 'turn' } satisfies SocketOrder);

/**
 * Socket.IO events so marked wait for the `InSocketOrder` events of their
 * socket and key sent before them (a message sent right behind its room's
 * join runs once the join is done), but run side by side with each other
 * and hold no later event. With nothing queued, they run at once.
 */
export const AfterSocketOrder = (key: OrderKey = oneOrder) =>
  SetMetadata(IN_SOCKET_ORDER, { key, mode: 'after' } satisfies SocketOrder);

/** The order a gateway's handler keeps, when it is marked. */
export function socketOrderOf(gateway: object, methodName: string): SocketOrder | undefined {
  const handler = (gateway as Record<string, unknown>)[methodName];
  if (typeof handler !== 'function') return undefined;
  return Reflect.getMetadata(IN_SOCKET_ORDER, handler) as SocketOrder | undefined;
}
