import { io, type ManagerOptions, type Socket, type SocketOptions } from 'socket.io-client';
import type {
  AckResponse,
  ClientToServerEvents,
  ServerToClientEvents,
} from '@app/contract/socket-events';

export type ClientSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

const DEFAULT_TIMEOUT_MS = 5_000;

/** A connected Socket.IO client; rejects with the connect_error if the server refuses it. */
export function connectSocket(
  url: string,
  token: string | undefined,
  options: Partial<ManagerOptions & SocketOptions> = {},
): Promise<ClientSocket> {
  const socket: ClientSocket = io(url, {
    auth: token === undefined ? {} : { token },
    transports: ['websocket'],
    reconnection: false,
    forceNew: true,
    ...options,
  });
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', (error) => {
      socket.close();
      reject(error);
    });
  });
}

/**
 * Emits an event with an ack and resolves with the server's answer.
 * `onAnswer` runs in the ack callback itself, before any other packet of the
 * same read is handled (a promise continuation runs only after them).
 */
export function emitAck<T = unknown>(
  socket: ClientSocket,
  event: string,
  payload?: unknown,
  onAnswer?: (response: AckResponse<T>) => void,
): Promise<AckResponse<T>> {
  const emit = socket.timeout(DEFAULT_TIMEOUT_MS).emit as unknown as (
    event: string,
    ...args: unknown[]
  ) => void;
  return new Promise((resolve, reject) => {
    const callback = (error: Error | null, response: AckResponse<T>) => {
      if (error) return reject(error);
      onAnswer?.(response);
      resolve(response);
    };
    if (payload === undefined) emit.call(socket.timeout(DEFAULT_TIMEOUT_MS), event, callback);
    else emit.call(socket.timeout(DEFAULT_TIMEOUT_MS), event, payload, callback);
  });
}

/** Resolves with the ack's data, failing the test on `{ ok: false }`; `onData` as `emitAck`'s `onAnswer`. */
export async function emitOk<T = unknown>(
  socket: ClientSocket,
  event: string,
  payload?: unknown,
  onData?: (data: T) => void,
): Promise<T> {
  const response = await emitAck<T>(socket, event, payload, (answer) => {
    if (answer.ok) onData?.(answer.data);
  });
  if (!response.ok) throw new Error(`${event} failed: ${JSON.stringify(response.error)}`);
  return response.data;
}

/** Resolves with the next `event` that matches. */
export function nextEvent<T = unknown>(
  socket: ClientSocket,
  event: string,
  matches: (payload: T) => boolean = () => true,
  timeoutMs = DEFAULT_TIMEOUT_MS,
): Promise<T> {
  const target = socket as unknown as {
    on(event: string, listener: (payload: T) => void): void;
    off(event: string, listener: (payload: T) => void): void;
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      target.off(event, listener);
      reject(new Error(`No ${event} within ${timeoutMs} ms`));
    }, timeoutMs);
    const listener = (payload: T) => {
      if (!matches(payload)) return;
      clearTimeout(timer);
      target.off(event, listener);
      resolve(payload);
    };
    target.on(event, listener);
  });
}

/** Collects every `event` a socket receives. */
export function collect<T = unknown>(socket: ClientSocket, event: string): T[] {
  const received: T[] = [];
  (socket as unknown as { on(event: string, listener: (payload: T) => void): void }).on(
    event,
    (payload) => received.push(payload),
  );
  return received;
}

/** Waits until `condition` holds, polling. */
export async function eventually(
  condition: () => boolean | Promise<boolean>,
  timeoutMs = DEFAULT_TIMEOUT_MS,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`Condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The sockets a suite opens, to close them all after each test. */
export function socketPool(url: () => string) {
  const open: ClientSocket[] = [];
  return {
    async connect(user: { token: string }): Promise<ClientSocket> {
      const socket = await connectSocket(url(), user.token);
      open.push(socket);
      return socket;
    },
    closeAll(): void {
      open.splice(0).forEach((socket) => socket.close());
    },
  };
}
