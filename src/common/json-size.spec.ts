import fc from 'fast-check';
import { leadingWithinBytes, receivedJsonBytes } from './json-size';

describe('leadingWithinBytes', () => {
  const item = (text: string) => ({ text });
  const size = (value: unknown) => Buffer.byteLength(JSON.stringify(value));

  it('keeps the items whose JSON fits together, and stops at the first that does not', () => {
    const items = [item('a'.repeat(10)), item('b'.repeat(10)), item('c'), item('d')];
    const twoFit = size(items[0]) + size(items[1]);
    expect(leadingWithinBytes(items, twoFit)).toEqual(items.slice(0, 2));
    expect(leadingWithinBytes(items, twoFit + size(items[2]) - 1)).toEqual(items.slice(0, 2));
    expect(leadingWithinBytes(items, Infinity)).toEqual(items);
  });

  it('counts the bytes of the UTF-8 JSON, not its characters', () => {
    const wide = item('é'.repeat(10));
    const small = item('y');
    const asCharacters = JSON.stringify(wide).length + size(small);
    expect(leadingWithinBytes([wide, small], asCharacters)).toEqual([wide]);
    expect(leadingWithinBytes([wide, small], asCharacters + 10)).toEqual([wide, small]);
  });

  it('counts the escapes JSON writes for control characters', () => {
    const escaped = item('\u0001'.repeat(10));
    expect(size(escaped)).toBe(size(item('')) + 60);
    const small = item('y');
    expect(leadingWithinBytes([small, escaped], size(small) + size(escaped) - 1)).toEqual([small]);
  });

  it('always keeps the first item, so that a reader moves on', () => {
    const items = [item('x'.repeat(100)), item('y')];
    expect(leadingWithinBytes(items, 10)).toEqual([items[0]]);
    expect(leadingWithinBytes([], 10)).toEqual([]);
  });
});

describe('receivedJsonBytes', () => {
  it('measures any parsed JSON as writing it again would', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const parsed = JSON.parse(JSON.stringify(value)) as unknown;
        expect(receivedJsonBytes(parsed)).toBe(Buffer.byteLength(JSON.stringify(parsed)));
      }),
    );
  });

  it('measures nesting deeper than JSON.stringify can write', () => {
    const depth = 100_000;
    const deep = JSON.parse('['.repeat(depth) + ']'.repeat(depth)) as unknown;
    expect(() => JSON.stringify(deep)).toThrow(RangeError);
    expect(receivedJsonBytes(deep)).toBe(2 * depth);
  });
});
