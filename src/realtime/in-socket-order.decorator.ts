import { SetMetadata } from '@nestjs/common';

const IN_SOCKET_ORDER = 'realtime:in-socket-order';

/** What events must stay in order with: those of the same socket and the same key. */
export type OrderKey = (payload: unknown) => string;

const oneOrder: OrderKey = () => '';

/**
 * Socket.IO events so marked run one at a time per socket and key, in the
 * order the client sent them, each start to finish (guards, pipes, handler,
 * ack): one waiting on a guard is not overtaken by the next. Events of other
 * keys (other rooms) run side by side. An event whose socket has gone by its
 * turn does not run.
 */
export const InSocketOrder = (key: OrderKey = oneOrder) => SetMetadata(IN_SOCKET_ORDER, key);

/** The order key of a gateway's handler, when it is marked. */
export function socketOrderOf(gateway: object, methodName: string): OrderKey | undefined {
  const handler = (gateway as Record<string, unknown>)[methodName];
  if (typeof handler !== 'function') return undefined;
  return Reflect.getMetadata(IN_SOCKET_ORDER, handler) as OrderKey | undefined;
}
