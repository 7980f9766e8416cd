// Type tests for SharedArray and RawArray, checked by `npm run typecheck` (tsc): each expected
// error below must be one. `value` and `raw` exist only where the typecode has them.
import { RawArray, SharedArray, getContext } from '../../src/index.ts';

const ints = new SharedArray('i', 3);
// @ts-expect-error: an 'i' array has no `value` (only 'c' and 'u' arrays are strings)
export const intText: string = ints.value;
// @ts-expect-error: nor `raw`
ints.raw;
// @ts-expect-error: nor can either be set
ints.value = 'abc';
export const first: number = ints.get(0);

const bytes = new SharedArray('c', 8);
export const byteText: string = bytes.value;
export const byteRaw: Uint8Array = bytes.raw;
bytes.value = 'abc';
bytes.raw = 'abc';
bytes.raw = new Uint8Array(2);
// @ts-expect-error: `raw` takes bytes or a string
bytes.raw = 5;

const text = new RawArray('u', 'a😀');
export const wideText: string = text.value;
// @ts-expect-error: a 'u' array has no `raw` (Python's c_wchar arrays have none)
text.raw;

// A context's classes are the same, and an array of any typecode may be a string.
const threadInts = new (getContext('thread').SharedArray)('d', [1.5]);
// @ts-expect-error: a 'd' array has no `value`
threadInts.value;
export function textOf(array: SharedArray): string {
  return array.value;
}
export const isShared: boolean = text instanceof SharedArray;
export const sameType: SharedArray<'u'> = text;
