import type { Logger } from '@nestjs/common';
import { OccasionalWarning } from '@app/common/occasional-warning';
import { withCaughtCommands } from './redis-io.adapter';

describe('withCaughtCommands', () => {
  it('drops the failures of the named commands with a warning, and leaves the rest as they are', async () => {
    const warn = jest.fn();
    const refused = new OccasionalWarning({ warn } as unknown as Logger);
    const lost = (..._args: unknown[]) =>
      Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:6379'));
    const client = {
      isOpen: false,
      pUnsubscribe: jest.fn(lost),
      unsubscribe: jest.fn(lost),
      get: jest.fn(lost),
    };
    const caught = withCaughtCommands(client, ['pUnsubscribe', 'unsubscribe'], refused);

    await expect(caught.pUnsubscribe('rt:socket.io#*', 'listener', true)).resolves.toBeUndefined();
    await expect(caught.unsubscribe('rt:socket.io-request#/#')).resolves.toBeUndefined();
    expect(client.pUnsubscribe).toHaveBeenCalledWith('rt:socket.io#*', 'listener', true);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn).toHaveBeenCalledWith(
      'Dropped 1 Socket.IO adapter command(s), the last: connect ECONNREFUSED 127.0.0.1:6379',
    );
    await expect(caught.get('key')).rejects.toThrow('ECONNREFUSED');
    expect(caught.isOpen).toBe(false);
  });
});
