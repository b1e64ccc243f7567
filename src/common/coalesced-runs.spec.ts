import { CoalescedRuns } from './coalesced-runs';

describe('CoalescedRuns', () => {
  it('runs once more for all the requests made while it runs, and not again after', async () => {
    const finishers: Array<() => void> = [];
    const runs = new CoalescedRuns(() => new Promise<void>((resolve) => finishers.push(resolve)));
    const first = runs.request();
    void runs.request();
    void runs.request();
    expect(finishers).toHaveLength(1);
    finishers[0]();
    await new Promise((resolve) => setImmediate(resolve));
    expect(finishers).toHaveLength(2);
    finishers[1]();
    await first;
    expect(finishers).toHaveLength(2);
  });

  it('takes requests again after a run that failed', async () => {
    let calls = 0;
    const runs = new CoalescedRuns(() => {
      calls += 1;
      return calls === 1 ? Promise.reject(new Error('down')) : Promise.resolve();
    });
    await expect(runs.request()).rejects.toThrow('down');
    await runs.request();
    expect(calls).toBe(2);
  });

  it('runs again after a failed run for a request made while it ran', async () => {
    const finishers: Array<(failed: boolean) => void> = [];
    const runs = new CoalescedRuns(
      () =>
        new Promise<void>((resolve, reject) =>
          finishers.push((failed) => (failed ? reject(new Error('down')) : resolve())),
        ),
    );
    const first = runs.request();
    void runs.request();
    finishers[0](true);
    await new Promise((resolve) => setImmediate(resolve));
    expect(finishers).toHaveLength(2);
    finishers[1](false);
    await first;
  });

  it('takes a request made right as a run ends as a new run', async () => {
    let calls = 0;
    const runs = new CoalescedRuns(() => {
      calls += 1;
      return Promise.resolve();
    });
    const first = runs.request();
    await first;
    await runs.request();
    expect(calls).toBe(2);
  });
});
