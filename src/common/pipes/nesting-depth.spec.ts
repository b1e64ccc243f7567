import { MAX_INPUT_DEPTH, nestingDepth } from './nesting-depth';

describe('nestingDepth', () => {
  it('counts nesting of arrays and objects', () => {
    expect(nestingDepth('text')).toBe(0);
    expect(nestingDepth({ a: 1 })).toBe(1);
    expect(nestingDepth({ a: [{ b: [] }] })).toBe(4);
  });

  it('stops early, without recursion, on absurd nesting', () => {
    const deep = JSON.parse('['.repeat(200_000) + ']'.repeat(200_000)) as unknown;
    expect(nestingDepth(deep)).toBe(MAX_INPUT_DEPTH + 1);
  });
});
