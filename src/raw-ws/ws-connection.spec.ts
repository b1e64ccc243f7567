import { WebSocket } from 'ws';
import type { AuthUser } from '@app/auth/auth-user';
import { WsConnection } from './ws-connection';

const user = { id: 'u', username: 'ada' } as AuthUser;

function connectionIn(readyState: number) {
  const socket = { readyState, close: jest.fn(), terminate: jest.fn() };
  const connection = new WsConnection('ws:1', socket as unknown as WebSocket, user, 1_024);
  return { connection, socket };
}

describe('WsConnection', () => {
  it.each([WebSocket.CONNECTING, WebSocket.OPEN])(
    'is cut off when the server closes or terminates it in state %i',
    (state) => {
      const closed = connectionIn(state);
      closed.connection.close(4001, 'Unauthorized');
      expect(closed.connection.cutOff).toBe(true);
      expect(closed.socket.close).toHaveBeenCalledWith(4001, 'Unauthorized');
      const terminated = connectionIn(state);
      terminated.connection.terminate();
      expect(terminated.connection.cutOff).toBe(true);
    },
  );

  it.each([WebSocket.CLOSING, WebSocket.CLOSED])(
    'is not cut off once the client started closing (state %i): its queued frames still count',
    (state) => {
      const { connection, socket } = connectionIn(state);
      connection.close(4001, 'Unauthorized');
      connection.terminate();
      expect(connection.cutOff).toBe(false);
      expect(socket.close).not.toHaveBeenCalled();
    },
  );

  it('queues a frame larger than the limit when none wait, then refuses until the queue empties', async () => {
    const { connection } = connectionIn(WebSocket.OPEN);
    let finish!: () => void;
    const running = new Promise<void>((resolve) => (finish = resolve));
    const ran: string[] = [];

    expect(connection.queueFrame(4_096, () => running)).toBe(true);
    expect(connection.queueFrame(1, () => Promise.resolve(void ran.push('refused')))).toBe(false);
    finish();
    await new Promise((resolve) => setImmediate(resolve));

    expect(connection.queueFrame(1, () => Promise.resolve(void ran.push('taken')))).toBe(true);
    await new Promise((resolve) => setImmediate(resolve));
    expect(ran).toEqual(['taken']);
  });

  it('counts every queued frame as at least its task’s cost, so small frames are bounded too', () => {
    const { connection } = connectionIn(WebSocket.OPEN);
    const never = () => new Promise<void>(() => undefined);
    const taken = Array.from({ length: 4 }, () => connection.queueFrame(1, never));
    // 1 KiB holds two frames of the 512 bytes each costs.
    expect(taken).toEqual([true, true, false, false]);
  });

  it('tells of a drop as too slow whatever it was sending, a reply as well as a delivery', () => {
    const socket = {
      readyState: WebSocket.OPEN,
      bufferedAmount: 2_048,
      send: jest.fn(),
      terminate: jest.fn(),
    };
    const dropped = jest.fn();
    const connection = new WsConnection(
      'ws:1',
      socket as unknown as WebSocket,
      user,
      1_024,
      dropped,
    );

    connection.send({ type: 'pong' });

    expect(socket.terminate).toHaveBeenCalled();
    expect(socket.send).not.toHaveBeenCalled();
    expect(dropped).toHaveBeenCalledTimes(1);
  });
});
