import { INPUT_BOUNDS, inputExcess } from './input-bounds';

const keys = (count: number) =>
  Object.fromEntries(Array.from({ length: count }, (_, index) => [`k${index}`, index]));

describe('inputExcess', () => {
  it('accepts input up to every bound', () => {
    expect(inputExcess('text')).toBeUndefined();
    expect(inputExcess({ a: [{ b: [] }] })).toBeUndefined();
    const nested = JSON.parse('['.repeat(INPUT_BOUNDS.depth) + ']'.repeat(INPUT_BOUNDS.depth));
    expect(inputExcess(nested)).toBeUndefined();
    expect(
      inputExcess({ a: keys(INPUT_BOUNDS.keys / 2), b: keys(INPUT_BOUNDS.keys / 2 - 2) }),
    ).toBe(undefined);
    expect(inputExcess([new Array(INPUT_BOUNDS.items - 1).fill(0)])).toBeUndefined();
  });

  it('stops early, without recursion, on absurd nesting', () => {
    const deep = JSON.parse('['.repeat(200_000) + ']'.repeat(200_000)) as unknown;
    expect(inputExcess(deep)).toBe(`Input may be nested at most ${INPUT_BOUNDS.depth} levels deep`);
  });

  it('counts the keys of all objects together', () => {
    const split = { a: keys(INPUT_BOUNDS.keys / 2), b: [keys(INPUT_BOUNDS.keys / 2)] };
    expect(inputExcess(split)).toBe(`Input may hold at most ${INPUT_BOUNDS.keys} keys`);
    expect(inputExcess(keys(90_000))).toBe(`Input may hold at most ${INPUT_BOUNDS.keys} keys`);
  });

  it('counts the items of all arrays together', () => {
    const half = new Array(INPUT_BOUNDS.items / 2).fill(1);
    expect(inputExcess({ a: half, b: [...half, 1] })).toBe(
      `Input may hold at most ${INPUT_BOUNDS.items} array items`,
    );
  });
});
