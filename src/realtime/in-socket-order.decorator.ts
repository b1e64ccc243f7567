import { SetMetadata } from '@nestjs/common';

const IN_SOCKET_ORDER = 'realtime:in-socket-order';

/**
 * Socket.IO events so marked run one at a time per socket, in the order the
 * client sent them, each start to finish (guards, pipes, handler, ack): one
 * waiting on a guard is not overtaken by the next.
 */
export const InSocketOrder = () => SetMetadata(IN_SOCKET_ORDER, true);

export function isInSocketOrder(gateway: object, methodName: string): boolean {
  const handler = (gateway as Record<string, unknown>)[methodName];
  return typeof handler === 'function' && Reflect.getMetadata(IN_SOCKET_ORDER, handler) === true;
}
