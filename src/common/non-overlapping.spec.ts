import { nonOverlapping } from './non-overlapping';

const turn = () => new Promise((resolve) => setImmediate(resolve));

describe('nonOverlapping', () => {
  it('skips ticks while a run is under way, and runs again once it has ended', async () => {
    const ends: Array<() => void> = [];
    const run = jest.fn(() => new Promise<void>((resolve) => ends.push(resolve)));
    const tick = nonOverlapping(run);

    tick();
    tick();
    tick();
    expect(run).toHaveBeenCalledTimes(1);

    ends[0]();
    await turn();
    tick();
    expect(run).toHaveBeenCalledTimes(2);
  });

  it('runs again after a run that failed', async () => {
    const run = jest.fn(() => Promise.reject(new Error('down')));
    const tick = nonOverlapping(run);
    tick();
    await turn();
    tick();
    expect(run).toHaveBeenCalledTimes(2);
  });
});
