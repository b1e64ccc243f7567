import { KeyedInOrder, KeyedSerialQueue, SerialQueue } from './serial-queue';

describe('SerialQueue', () => {
  it('runs tasks one at a time in order, even when one fails', async () => {
    const queue = new SerialQueue();
    const events: string[] = [];
    const task =
      (name: string, fail = false) =>
      async () => {
        events.push(`start ${name}`);
        await new Promise((resolve) => setTimeout(resolve, 5));
        events.push(`end ${name}`);
        if (fail) throw new Error(name);
        return name;
      };
    const results = await Promise.allSettled([
      queue.run(task('a')),
      queue.run(task('b', true)),
      queue.run(task('c')),
    ]);
    expect(events).toEqual(['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
  });
});

describe('KeyedSerialQueue', () => {
  const step = () => new Promise((resolve) => setTimeout(resolve, 5));

  it('runs the tasks of one key in order, and of different keys side by side', async () => {
    const queue = new KeyedSerialQueue<string>();
    const events: string[] = [];
    const task =
      (name: string, fail = false) =>
      async () => {
        events.push(`start ${name}`);
        await step();
        events.push(`end ${name}`);
        if (fail) throw new Error(name);
      };
    const results = await Promise.allSettled([
      queue.run('x', task('x1', true)),
      queue.run('y', task('y1')),
      queue.run('x', task('x2')),
    ]);
    const at = (event: string) => events.indexOf(event);
    expect(at('start y1')).toBeLessThan(at('end x1'));
    expect(at('start x2')).toBeGreaterThan(at('end x1'));
    expect(results.map((r) => r.status)).toEqual(['rejected', 'fulfilled', 'fulfilled']);
  });

  it('holds nothing for a key once its tasks are done', async () => {
    const queue = new KeyedSerialQueue<string>();
    const running = queue.run('x', step);
    expect(queue.size).toBe(1);
    await running;
    await step();
    expect(queue.size).toBe(0);
  });
});

describe('KeyedInOrder', () => {
  const deferred = <T>() => {
    let resolve!: (value: T) => void;
    let reject!: (error: Error) => void;
    const promise = new Promise<T>((res, rej) => ([resolve, reject] = [res, rej]));
    return { promise, resolve, reject };
  };

  it('settles a key’s answers in the order asked, whichever comes first, other keys aside', async () => {
    const order = new KeyedInOrder<string>();
    const settled: string[] = [];
    const [first, second] = [deferred<string>(), deferred<string>()];
    const asked = [
      order.inOrder('a', first.promise),
      order.inOrder('a', second.promise),
      order.inOrder('a', Promise.resolve('third')),
      order.inOrder('b', Promise.resolve('other key')),
    ].map((answer) => answer.then((value) => settled.push(value)));
    second.resolve('second');
    await new Promise(setImmediate);
    expect(settled).toEqual(['other key']);
    first.resolve('first');
    await Promise.all(asked);
    expect(settled).toEqual(['other key', 'first', 'second', 'third']);
  });

  it('lets a failure through as its own answer only, and keeps nothing once settled', async () => {
    const order = new KeyedInOrder<string>();
    const failed = order.inOrder('a', Promise.reject(new Error('no')));
    const next = order.inOrder('a', Promise.resolve('next'));
    await expect(failed).rejects.toThrow('no');
    await expect(next).resolves.toBe('next');
    await new Promise(setImmediate);
    expect((order as unknown as { last: Map<string, unknown> }).last.size).toBe(0);
  });
});
