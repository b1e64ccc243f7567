import { Logger } from '@nestjs/common';
import type { ConfigService } from '@nestjs/config';
import type { HttpAdapterHost } from '@nestjs/core';
import type { AllConfig } from '@app/config/app-config';
import { GracefulShutdown } from './graceful-shutdown.service';

describe('GracefulShutdown', () => {
  afterEach(() => jest.restoreAllMocks());

  it('logs a step that fails, with its phase, and still runs every other step', async () => {
    const logged = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    const warned = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const told = jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    const shutdown = new GracefulShutdown(
      { httpAdapter: undefined } as unknown as HttpAdapterHost,
      { get: () => 1000 } as unknown as ConfigService<AllConfig, true>,
    );
    const ran: string[] = [];
    shutdown.register('finish-sends', () => Promise.reject(new Error('write queue closed')));
    shutdown.register('tell-clients', () => {
      throw new Error('socket server already closed');
    });
    shutdown.register('tell-clients', () => void ran.push('told'));
    shutdown.register('finish-writes', () => Promise.reject(new Error('presence write refused')));
    shutdown.register('finish-writes', () => void ran.push('written'));

    await shutdown.beforeApplicationShutdown();

    expect(ran).toEqual(['told', 'written']);
    expect(logged.mock.calls.map(([message]) => message)).toEqual([
      'A shutdown step (finish-sends) failed: write queue closed',
      'A shutdown step (tell-clients) failed: socket server already closed',
      'A shutdown step (finish-writes) failed: presence write refused',
    ]);
    expect(warned).toHaveBeenCalledWith(
      'Clients told and writes finished, but for 3 failed step(s)',
    );
    expect(told).not.toHaveBeenCalledWith('Clients told and writes finished');
  });
});
