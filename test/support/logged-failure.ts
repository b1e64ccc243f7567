import { Logger } from '@nestjs/common';
import { eventually, sleep } from './sockets';

/**
 * Runs `act`, which is to make the app log an error, and gives what was
 * logged and the rejections left unhandled meanwhile (one ends a Node 20
 * process): none is what a failure nothing awaits must leave.
 */
export async function loggedFailure(
  act: () => unknown,
): Promise<{ logged: string[]; unhandled: unknown[] }> {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  const errors = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
  try {
    await act();
    await eventually(() => errors.mock.calls.length > 0);
    // Long enough for a rejection left unhandled to be reported.
    await sleep(50);
    return { logged: errors.mock.calls.map(([message]) => String(message)), unhandled };
  } finally {
    process.off('unhandledRejection', onUnhandled);
    errors.mockRestore();
  }
}
