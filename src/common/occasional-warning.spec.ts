import type { Logger } from '@nestjs/common';
import { OccasionalWarning } from './occasional-warning';

describe('OccasionalWarning', () => {
  afterEach(() => jest.useRealTimers());

  it('warns at once, then at most once per interval, counting what came meanwhile', () => {
    jest.useFakeTimers();
    const warn = jest.fn();
    const warning = new OccasionalWarning({ warn } as unknown as Logger, 1_000);
    const note = () => warning.note((count) => `${count} came`);

    note();
    note();
    note();
    jest.advanceTimersByTime(999);
    note();
    expect(warn.mock.calls).toEqual([['1 came']]);

    jest.advanceTimersByTime(1);
    note();
    expect(warn.mock.calls).toEqual([['1 came'], ['4 came']]);
  });
});
