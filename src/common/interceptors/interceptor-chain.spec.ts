import { AsyncLocalStorage, AsyncResource } from 'node:async_hooks';
import type { CallHandler, ExecutionContext, NestInterceptor } from '@nestjs/common';
import { InterceptorsConsumer } from '@nestjs/core/interceptors/interceptors-consumer';
import { firstValueFrom, from, type Observable, switchMap } from 'rxjs';

/** Like the throttle interceptor: an asynchronous step before the handler. */
class AsyncStepInterceptor implements NestInterceptor {
  intercept(_context: ExecutionContext, next: CallHandler): Observable<unknown> {
    return from(new Promise((resolve) => setTimeout(resolve, 1))).pipe(
      switchMap(() => next.handle()),
    );
  }
}

class Gateway {
  handle(): void {}
}

function runThroughChain(handler: () => Promise<unknown>): Promise<unknown> {
  const consumer = new InterceptorsConsumer();
  const gateway = new Gateway();
  return consumer
    .intercept(
      [new AsyncStepInterceptor(), new AsyncStepInterceptor()],
      [],
      gateway,
      gateway.handle,
      handler,
      'ws',
    )
    .then((result) => firstValueFrom(result as Observable<unknown>));
}

/**
 * Nest's interceptor chain as patched in `patches/` (applied on install):
 * the same async context for every step, without `AsyncResource.bind`.
 */
describe("Nest's interceptor chain", () => {
  afterEach(() => jest.restoreAllMocks());

  it('runs the handler in the async context of the event that started the chain', async () => {
    const storage = new AsyncLocalStorage<string>();
    const seen = await Promise.all(
      ['event-1', 'event-2'].map((id) =>
        storage.run(id, () => runThroughChain(() => Promise.resolve(storage.getStore()))),
      ),
    );
    expect(seen).toEqual(['event-1', 'event-2']);
  });

  it('binds its steps without the static AsyncResource.bind that Node 20 makes costly', async () => {
    const bind = jest.spyOn(AsyncResource, 'bind');
    await expect(runThroughChain(() => Promise.resolve('result'))).resolves.toBe('result');
    expect(bind).not.toHaveBeenCalled();
  });
});
