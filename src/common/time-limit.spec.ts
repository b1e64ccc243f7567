import { oneAtATime, withinTime } from './time-limit';

describe('withinTime', () => {
  it('settles with the work when it answers in time', async () => {
    await expect(
      withinTime(Promise.resolve('answer'), 1_000, () => new Error('late')),
    ).resolves.toBe('answer');
    await expect(
      withinTime(Promise.reject(new Error('failed')), 1_000, () => new Error('late')),
    ).rejects.toThrow('failed');
  });

  it('rejects with the late error once the time has passed', async () => {
    const never = new Promise<never>(() => undefined);
    await expect(withinTime(never, 10, () => new Error('no answer'))).rejects.toThrow('no answer');
  });
});

describe('oneAtATime', () => {
  it('shares a run among the callers that come while it runs, and starts anew after it settled', async () => {
    let runs = 0;
    let finish: (value: number) => void = () => undefined;
    const attempt = oneAtATime(() => {
      runs += 1;
      return new Promise<number>((resolve) => (finish = resolve));
    });

    const first = attempt();
    const second = attempt();
    expect(runs).toBe(1);
    finish(1);
    await expect(Promise.all([first, second])).resolves.toEqual([1, 1]);

    const third = attempt();
    expect(runs).toBe(2);
    finish(2);
    await expect(third).resolves.toBe(2);
  });

  it('starts anew after a run that failed', async () => {
    let runs = 0;
    const attempt = oneAtATime(() => {
      runs += 1;
      return runs === 1 ? Promise.reject(new Error('down')) : Promise.resolve('up');
    });

    await expect(attempt()).rejects.toThrow('down');
    await expect(attempt()).resolves.toBe('up');
  });
});
