import { UUID_PATTERN, uuidv7 } from './uuid-v7';

describe('uuidv7', () => {
  it('is a version 7, variant 1 UUID', () => {
    const id = uuidv7();
    expect(id).toMatch(UUID_PATTERN);
    expect(id[14]).toBe('7');
    expect(['8', '9', 'a', 'b']).toContain(id[19]);
  });

  it('sorts by creation time as a string', () => {
    const ids = [1_000, 2_000, 2_001, 1_700_000_000_000].map((ms) => uuidv7(ms));
    expect([...ids].sort()).toEqual(ids);
  });

  it('never repeats, also across refills of its entropy pool', () => {
    const ids = Array.from({ length: 2_000 }, () => uuidv7(1_700_000_000_000));
    expect(new Set(ids).size).toBe(ids.length);
    expect(new Set(ids.map((id) => id.slice(24))).size).toBe(ids.length);
  });
});
