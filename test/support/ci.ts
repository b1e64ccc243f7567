/**
 * Whether this run is CI's, where no suite may skip for want of a service.
 * CI providers set `CI` to `true`, `1` or their own name; only an empty,
 * `false` or `0` value means a developer's machine.
 */
export function runsUnderCi(): boolean {
  const value = (process.env.CI ?? '').trim().toLowerCase();
  return value !== '' && value !== 'false' && value !== '0';
}
