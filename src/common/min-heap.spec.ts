import fc from 'fast-check';
import { MinHeap } from './min-heap';

describe('MinHeap', () => {
  it('pops in ascending order whatever the pushes and pops in between', () => {
    fc.assert(
      fc.property(fc.array(fc.option(fc.integer(), { nil: undefined })), (script) => {
        const heap = new MinHeap<number>((a, b) => a < b);
        const model: number[] = [];
        for (const step of script) {
          if (step === undefined) {
            model.sort((a, b) => a - b);
            expect(heap.pop()).toBe(model.shift());
          } else {
            heap.push(step);
            model.push(step);
          }
          expect(heap.size).toBe(model.length);
        }
      }),
      { numRuns: 300 },
    );
  });
});
