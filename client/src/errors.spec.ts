import type { ErrorBody } from './contract';
import { ChatError, endsRetries, failureReporter, MAX_INTERNAL_ERRORS } from './errors';

const answer = (code: ErrorBody['code']): ErrorBody => ({ code, message: code, details: [] });

describe('endsRetries', () => {
  it('ends them on a final refusal at once', () => {
    expect(endsRetries(answer('FORBIDDEN'), { internalErrors: 0 })).toBe(true);
  });

  it('ends them on the third INTERNAL in a row; any other refusal starts the count again', () => {
    const failures = { internalErrors: 0 };
    const codes = ['INTERNAL', 'INTERNAL', 'RATE_LIMITED', 'INTERNAL', 'INTERNAL'] as const;
    expect(codes.map((code) => endsRetries(answer(code), failures))).toEqual([
      false,
      false,
      false,
      false,
      false,
    ]);
    expect(endsRetries(answer('INTERNAL'), failures)).toBe(true);
    expect(MAX_INTERNAL_ERRORS).toBe(3);
  });
});

describe('failureReporter', () => {
  const settle = () => new Promise((resolve) => setImmediate(resolve));

  it('reports an error once per context, however many works of it fail with it', async () => {
    const reports: Array<[string, string]> = [];
    const track = failureReporter<string>((error, room) => reports.push([room, error.message]));
    const shared = new ChatError({
      code: 'UNAVAILABLE',
      message: 'token request failed',
      details: [],
    });
    const failed = Promise.reject(shared);

    track(failed, 'a');
    track(failed, 'a');
    track(Promise.reject(shared), 'b');
    await settle();

    expect(reports).toEqual([
      ['a', 'token request failed'],
      ['b', 'token request failed'],
    ]);
  });
});
