import { AppException } from './errors/app.exception';

/**
 * A connection or stream being opened is checked, when it registers, against
 * what changed since it was authorized (accounts closed, members removed),
 * which is remembered only for a while. One that took longer than that to
 * open (a stalled database or Redis) might have missed a change: it is
 * refused for now, and the client's next try is checked afresh.
 */
export function assertRemembered(startedAt: number, memoryMs: number): void {
  if (performance.now() - startedAt >= memoryMs)
    throw AppException.unavailable('Opening took too long: try again');
}
