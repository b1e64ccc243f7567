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
});
