import { availableParallelism } from 'node:os';
import { quotaCores, usableCores, type ReadFile } from './usable-cores';

/** A file system holding these files only. */
function files(contents: Record<string, string>): ReadFile {
  return (path) => {
    if (path in contents) return contents[path];
    throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
  };
}

const V2 = '/sys/fs/cgroup/cpu.max';
const V1_QUOTA = '/sys/fs/cgroup/cpu/cpu.cfs_quota_us';
const V1_PERIOD = '/sys/fs/cgroup/cpu/cpu.cfs_period_us';

describe('quotaCores', () => {
  it.each([
    ['cgroup v2, a core and a half', { [V2]: '150000 100000\n' }, 1.5],
    ['cgroup v2, no limit', { [V2]: 'max 100000\n' }, undefined],
    ['cgroup v1, two cores', { [V1_QUOTA]: '200000\n', [V1_PERIOD]: '100000\n' }, 2],
    ['cgroup v1, no limit', { [V1_QUOTA]: '-1\n', [V1_PERIOD]: '100000\n' }, undefined],
    ['no cgroup files', {}, undefined],
    ['an unreadable value', { [V2]: 'garbage' }, undefined],
  ])('reads %s', (_, contents, expected) => {
    expect(quotaCores(files(contents))).toBe(expected);
  });
});

describe('usableCores', () => {
  it('is the CPUs the process may run on without a quota', () => {
    expect(usableCores(files({}))).toBe(availableParallelism());
  });

  it('takes whole cores of a quota, at least one, and never more than the CPUs', () => {
    expect(usableCores(files({ [V2]: '50000 100000' }))).toBe(1);
    expect(usableCores(files({ [V2]: '150000 100000' }))).toBe(1);
    expect(usableCores(files({ [V2]: '6400000 100000' }))).toBe(availableParallelism());
  });
});
