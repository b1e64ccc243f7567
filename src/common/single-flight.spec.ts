import { SingleFlight } from './single-flight';

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

describe('SingleFlight', () => {
  it('shares one load among callers, who go on in the order they asked', async () => {
    const flights = new SingleFlight<number>();
    const loaded = deferred<number>();
    const load = jest.fn(() => loaded.promise);
    const kept: number[] = [];
    const order: string[] = [];

    const first = flights.run('k', load, (value) => kept.push(value)).then(() => order.push('a'));
    const second = flights.run('k', load, (value) => kept.push(value)).then(() => order.push('b'));
    loaded.resolve(7);
    await Promise.all([first, second]);

    expect(load).toHaveBeenCalledTimes(1);
    expect(kept).toEqual([7]);
    expect(order).toEqual(['a', 'b']);
  });

  it('loads again once a load has finished, and after a failure', async () => {
    const flights = new SingleFlight<number>();
    await expect(
      flights.run('k', () => Promise.reject(new Error('down')), jest.fn()),
    ).rejects.toThrow('down');
    await expect(flights.run('k', () => Promise.resolve(1), jest.fn())).resolves.toBe(1);
    await expect(flights.run('k', () => Promise.resolve(2), jest.fn())).resolves.toBe(2);
  });

  it('keeps nothing from a load whose key was forgotten meanwhile, and loads afresh', async () => {
    const flights = new SingleFlight<boolean>();
    const stale = deferred<boolean>();
    const keep = jest.fn();
    const staleAnswer = flights.run('k', () => stale.promise, keep);

    flights.forget('k');
    const fresh = flights.run('k', () => Promise.resolve(false), keep);
    stale.resolve(true);

    expect(await staleAnswer).toBe(true);
    expect(await fresh).toBe(false);
    expect(keep.mock.calls).toEqual([[false]]);
  });
});
