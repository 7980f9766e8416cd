// Small plain data (the messages most programs send: records and short arrays of numbers, strings,
// booleans and null) encoded in JavaScript, without V8's serializer. For such a value the
// serializer's native call, header and per-property work cost more than the value: a six-field
// record took 1.5 us to serialize and 2.0 to deserialize, and takes 0.5 and 0.7 here (warm, one
// process). The result is the structured clone's: the same keys in the same order, exact numbers
// (-0, NaN), exact strings (lone surrogates too), plain prototypes, and shared references and
// cycles as they were (an object met again is written as a reference to its first appearance, as
// V8's serializer does). Anything else, and anything larger than the budgets below, is left to the
// serializer: encode() answers undefined, having written nothing the caller keeps.
//
// Objects of one shape are the common case (records of one kind, message after message): an
// object's keys come before its values, so that a writer that knows that key list copies its bytes
// at once, and a reader that knows them (the same bytes as last time at their hash) skips them and
// makes the object from an object literal compiled for those keys, with its final hidden class
// at once. The bench's six-field record, warm, one process: 0.5 us to decode against 0.7.
//
// An array of numbers only is one run of float64s (NUMBERS), without the length limit of the others:
// lists of numbers are common messages, and the serializer reads one back a heap object per number.
// So is a Float64Array of its own buffer (FLOAT64S), read back as a Float64Array.
//
// One difference: a Proxy of a plain object or array is encoded as what it shows, where structured
// clone throws (DataCloneError). Telling a Proxy costs a native call per object.

import { native } from '../native/binding.ts';
import { messageArrayBuffer } from './message-buffer.ts';

const NUMBER = 1; // float64, little-endian
const INT = 2; // int32, little-endian
const ASCII = 3; // u32 length, then one byte per character
const UTF16 = 4; // u32 length, then two bytes per code unit, little-endian
const OBJECT = 5; // u32 count, u32 byte length of the keys, the count keys (ASCII or UTF16 strings), then the count values
const ARRAY = 6; // u32 length, then the elements
const TRUE = 7;
const FALSE = 8;
const NULL = 9;
const UNDEFINED = 10;
const REFERENCE = 11; // u32: the index of an object or array met before, in the order of first appearance
const NUMBERS = 12; // u32 length, then the elements as float64, little-endian: an array of numbers only
const FLOAT64S = 13; // u32 length, then the elements as float64, little-endian: a Float64Array of its own buffer

/**
 * Objects and arrays in one value, at most. The gain is largest in small values, where the
 * serializer's fixed costs dominate, but it holds for larger ones too: V8 encodes 200 records
 * faster than this (79 against 115 us, warm), but this decodes faster (94 against 142), and a
 * value the serializer takes first needs reduce()'s full scan for library objects (its quick check
 * covers 64 containers) at 1 us or more per container. In-process Pipe round trips (medians of
 * alternating runs), this limit at 1024 against 64: a pool batch of 128 tiny tasks 219 against
 * 334 us, 100 records 242 against 363, 128 task results 148 against 246. Cold, this is several
 * times slower than the serializer.
 */
const MAX_CONTAINERS = 1024;
/** Beyond this many, containers met so far are looked up in a Map instead of a list. */
const LISTED_CONTAINERS = 16;
const MAX_DEPTH = 16;
const MAX_ARRAY_LENGTH = 256;
/**
 * Arrays of numbers only, from this length on, are written as one run of float64s, of any length
 * the buffer takes: a tag and a call per element cost more than the element. A thousand numbers
 * (warm, one process): written in 2.4 us and read in 10, where the serializer took 4 and 22 (it
 * reads a heap object per number); a Pipe round trip of them 37 us instead of 167.
 */
const NUMBERS_MIN = 16;
/** Longer strings go to the serializer, which copies them whole where this would loop per character. */
const MAX_STRING_LENGTH = 1024;
/** Strings up to this length are read with a loop; longer ones with one native call. */
const SHORT_STRING = 24;

let out: Uint8Array = new Uint8Array(0);
let outBuffer: Buffer = Buffer.alloc(0);
let outView: DataView = new DataView(out.buffer);
let pos = 0;
/** Set while encode() runs: a getter that encodes something itself is left to the serializer. */
let encoding = false;
// The containers met (and, below, decoded) so far live in arrays that are reused, not emptied:
// `length = 0` frees an array's backing store, and the next message's first push allocates it again.
const containers: (object | undefined)[] = [];
let containerCount = 0;
let containerIndex: Map<object, number> | undefined;

/** Set when a write found no room: the value may be plain data too large for the buffer. */
let lacked = 0;

/**
 * Writes `value` into `into` from `offset`; returns the end offset, or undefined when the value is
 * not small plain data or does not fit (see lackedRoom()).
 */
export function encode(value: unknown, into: Uint8Array, offset: number): number | undefined {
  lacked = 0;
  if (encoding) return undefined;
  if (out !== into) {
    out = into;
    outBuffer = Buffer.from(into.buffer, into.byteOffset, into.byteLength);
    outView = new DataView(into.buffer, into.byteOffset, into.byteLength);
  }
  pos = offset;
  encoding = true;
  try {
    return writeValue(value, 0) ? pos : undefined;
  } catch {
    return undefined; // a getter threw: the serializer will meet it again and say where
  } finally {
    encoding = false;
    for (let i = 0; i < containerCount; i++) containers[i] = undefined;
    containerCount = 0;
    containerIndex = undefined;
  }
}

/**
 * After an encode() that answered undefined: 0 if the value is not plain data (or not small enough),
 * else how many bytes the buffer needed at least (it may need more: encode() stopped there). A
 * buffer of that size or more may take it.
 */
export function lackedRoom(): number {
  return lacked;
}

function room(bytes: number): boolean {
  if (out.length - pos >= bytes) return true;
  lacked = pos + bytes;
  return false;
}

function writeValue(value: unknown, depth: number): boolean {
  if (!room(9)) return false;
  switch (typeof value) {
    case 'number':
      if ((value | 0) === value && !Object.is(value, -0)) {
        out[pos] = INT;
        outView.setInt32(pos + 1, value, true);
        pos += 5;
      } else {
        out[pos] = NUMBER;
        outView.setFloat64(pos + 1, value, true);
        pos += 9;
      }
      return true;
    case 'string':
      return writeString(value);
    case 'boolean':
      out[pos++] = value ? TRUE : FALSE;
      return true;
    case 'undefined':
      out[pos++] = UNDEFINED;
      return true;
    case 'object':
      if (value === null) {
        out[pos++] = NULL;
        return true;
      }
      {
        const seen = indexOfContainer(value);
        if (seen >= 0) {
          out[pos] = REFERENCE;
          outView.setUint32(pos + 1, seen, true);
          pos += 5;
          return true;
        }
      }
      if (depth >= MAX_DEPTH || containerCount >= MAX_CONTAINERS) return false;
      containers[containerCount++] = value;
      if (containerIndex) containerIndex.set(value, containerCount - 1);
      else if (containerCount > LISTED_CONTAINERS) {
        // Filled by a loop: from pairs, each container cost an array and the list a copy.
        containerIndex = new Map();
        for (let i = 0; i < containerCount; i++) containerIndex.set(containers[i] as object, i);
      }
      return Array.isArray(value) ? writeArray(value, depth) : writeObject(value, depth);
    default:
      return false; // bigint, symbol, function
  }
}

function indexOfContainer(value: object): number {
  if (containerIndex) return containerIndex.get(value) ?? -1;
  for (let i = 0; i < containerCount; i++) if (containers[i] === value) return i;
  return -1;
}

function writeArray(array: unknown[], depth: number): boolean {
  const length = array.length;
  if (Object.getPrototypeOf(array) !== Array.prototype) return false;
  if (length >= NUMBERS_MIN) {
    const numbers = writeNumbers(array, length);
    if (numbers !== undefined) return numbers;
  }
  if (length > MAX_ARRAY_LENGTH) return false;
  out[pos] = ARRAY;
  outView.setUint32(pos + 1, length, true);
  pos += 5;
  for (let i = 0; i < length; i++) {
    const value = array[i];
    // A hole reads as undefined; the serializer keeps it a hole.
    if (value === undefined && !Object.hasOwn(array, i)) return false;
    if (!writeValue(value, depth + 1)) return false;
  }
  // Properties besides the elements (a RegExp match's `index`, say) are cloned by the serializer.
  // Without holes, the keys are the indices and those properties. (This check is a third of the
  // time to write a small array; a native call that skips the indices cost as much.)
  return Object.keys(array).length === length;
}

/**
 * The array as a NUMBERS run if every element is a number (and it has no other properties, else
 * false: the serializer's); undefined, having written nothing, if an element is not a number (or a
 * hole), or the run does not fit (then element by element, as any array).
 */
function writeNumbers(array: unknown[], length: number): boolean | undefined {
  const start = pos;
  if (!room(5 + 8 * length)) return undefined;
  let at = pos + 5;
  for (let i = 0; i < length; i++, at += 8) {
    const value = array[i];
    if (typeof value !== 'number') return undefined;
    outView.setFloat64(at, value, true);
  }
  // Properties besides the elements (a RegExp match's `index`, say) are cloned by the serializer.
  // The addon lists them without a string per index, as Object.keys() makes. (Without the addon,
  // native() throws, and encode() leaves the value to the serializer.)
  if (native().hasNamedProperties(array)) return false;
  out[start] = NUMBERS;
  outView.setUint32(start + 1, length, true);
  pos = at;
  return true;
}

function writeObject(object: object, depth: number): boolean {
  const proto = Object.getPrototypeOf(object) as object | null;
  if (proto !== Object.prototype && proto !== null) return proto === Float64Array.prototype && writeFloat64s(object as Float64Array);
  out[pos] = OBJECT;
  const countAt = pos + 1;
  pos += 9;
  // The keys first, then the values: a reader that knows these keys' bytes skips them whole.
  const keysAt = pos;
  let count = 0;
  let shape: KeyBlock | undefined;
  let matching = true;
  for (const key in object) {
    if (count === 0) shape = keyBlocks.get(key);
    if (matching && shape !== undefined && shape.keys[count] === key) {
      count++;
      continue;
    }
    if (matching) {
      // The keys so far were those of the known block: now they are written one by one.
      matching = false;
      for (let i = 0; i < count; i++) if (!writeKey(shape!.keys[i] as string)) return false;
    }
    // Setting '__proto__' on the receiving side would set the prototype, not a property.
    if (key === '__proto__' || !writeKey(key)) return false;
    count++;
  }
  if (matching && shape !== undefined) {
    if (count === shape.keys.length) {
      if (!room(shape.bytes.length)) return false;
      out.set(shape.bytes, pos);
      pos += shape.bytes.length;
    } else {
      for (let i = 0; i < count; i++) if (!writeKey(shape.keys[i] as string)) return false;
    }
  } else if (count > 0 && count <= MAX_BLOCK_KEYS && keyBlocks.size < MAX_KEY_BLOCKS) {
    const keys: string[] = [];
    for (const key in object) keys.push(key);
    if (keys.length === count) keyBlocks.set(keys[0] as string, { keys, bytes: out.slice(keysAt, pos) });
  }
  outView.setUint32(countAt, count, true);
  outView.setUint32(countAt + 4, pos - keysAt, true);
  // A getter that deletes or adds keys meanwhile shows as a different count: the serializer's case.
  let written = 0;
  for (const key in object) {
    if (!writeValue((object as Record<string, unknown>)[key], depth + 1)) return false;
    written++;
  }
  return written === count;
}

// A Float64Array over the whole of an ArrayBuffer of its own (what `new Float64Array(n)` makes: a
// pool's chunk of numbers) is its bytes, and is read back into a buffer from the free list (see
// message-buffer.ts); the serializer's clone of it allocated fresh memory on both sides. A view
// into a larger buffer (its clone carries the whole buffer), into shared memory, into a resizable
// or detached buffer, or an empty one, is the serializer's.
function writeFloat64s(array: Float64Array): boolean {
  const { buffer, byteLength } = array;
  if (byteLength === 0 || array.byteOffset !== 0 || byteLength !== buffer.byteLength || !(buffer instanceof ArrayBuffer) || (buffer as { resizable?: boolean }).resizable) return false;
  if (!room(5 + byteLength)) return false;
  out[pos] = FLOAT64S;
  outView.setUint32(pos + 1, array.length, true);
  out.set(new Uint8Array(buffer, 0, byteLength), pos + 5);
  pos += 5 + byteLength;
  return true;
}

/** The keys of objects met before, with their bytes, by first key: most messages have a few shapes. */
interface KeyBlock {
  keys: string[];
  bytes: Uint8Array;
}
const keyBlocks = new Map<string, KeyBlock>();
const MAX_KEY_BLOCKS = 256;
const MAX_BLOCK_KEYS = 64;

// Keys repeat from message to message: their bytes are kept (for the first 256 distinct keys).
const keyBytes = new Map<string, Uint8Array>();

function writeKey(key: string): boolean {
  const bytes = keyBytes.get(key);
  if (bytes === undefined) {
    const start = pos;
    if (!writeString(key)) return false;
    if (keyBytes.size < 256) keyBytes.set(key, out.slice(start, pos));
    return true;
  }
  const length = bytes.length;
  if (!room(length)) return false;
  for (let i = 0; i < length; i++) out[pos + i] = bytes[i] as number;
  pos += length;
  return true;
}

function writeString(text: string): boolean {
  const length = text.length;
  if (length > MAX_STRING_LENGTH || !room(5 + 2 * length)) return false;
  const start = pos;
  out[pos] = ASCII;
  outView.setUint32(pos + 1, length, true);
  pos += 5;
  for (let i = 0; i < length; i++) {
    const code = text.charCodeAt(i);
    if (code > 0x7f) {
      pos = start;
      return writeUtf16(text);
    }
    out[pos++] = code;
  }
  return true;
}

function writeUtf16(text: string): boolean {
  out[pos] = UTF16;
  outView.setUint32(pos + 1, text.length, true);
  pos += 5;
  // UTF-16LE code units as they are, unpaired surrogates included.
  pos += outBuffer.write(text, pos, 'utf16le');
  return true;
}

// Reading allocates little but the value: a DataView over the input at its first float64 (one
// for all the messages of a ring), and a Buffer over it only for a string long enough to need one.
let input: Uint8Array = new Uint8Array(0);
let inputBuffer: Buffer | undefined;
let at = 0;
/** The objects and arrays decoded so far, in the order of first appearance (for REFERENCE). */
const decoded: (object | undefined)[] = [];
let decodedCount = 0;
const keepDecoded = (object: object): void => {
  decoded[decodedCount++] = object;
};

/** The value that encode() wrote into `bytes` from `offset`. */
export function decode(bytes: Uint8Array, offset: number): unknown {
  input = bytes;
  inputBuffer = undefined;
  at = offset;
  try {
    return readValue();
  } finally {
    for (let i = 0; i < decodedCount; i++) decoded[i] = undefined;
    decodedCount = 0;
  }
}

function uint32At(i: number): number {
  return ((input[i] as number) | ((input[i + 1] as number) << 8) | ((input[i + 2] as number) << 16)) + (input[i + 3] as number) * 0x1000000;
}

function readUint32(): number {
  const value = uint32At(at);
  at += 4;
  return value;
}

// Through a DataView over the input, made once per input (a ring's memory is one for every
// message): copying the eight bytes out first took 28 ns a number in a long run, this 5.
function readFloat64(): number {
  if (inputViewOf !== input) {
    inputView = new DataView(input.buffer, input.byteOffset, input.byteLength);
    inputViewOf = input;
  }
  const value = (inputView as DataView).getFloat64(at, true);
  at += 8;
  return value;
}
let inputViewOf: Uint8Array | undefined;
let inputView: DataView | undefined;

function bufferOfInput(): Buffer {
  return (inputBuffer ??= Buffer.from(input.buffer, input.byteOffset, input.byteLength));
}

function readValue(): unknown {
  const tag = input[at++];
  switch (tag) {
    case INT:
      return readUint32() | 0;
    case NUMBER:
      return readFloat64();
    case ASCII:
    case UTF16:
      return readString(tag);
    case TRUE:
      return true;
    case FALSE:
      return false;
    case NULL:
      return null;
    case UNDEFINED:
      return undefined;
    case ARRAY: {
      const length = readUint32();
      const array = new Array<unknown>(length);
      keepDecoded(array); // before its elements, which may refer to it
      for (let i = 0; i < length; i++) array[i] = readValue();
      return array;
    }
    case OBJECT:
      return readObject();
    case NUMBERS:
      return readNumbers();
    case FLOAT64S:
      return readFloat64s();
    case REFERENCE:
      return decoded[readUint32()];
    default:
      throw new Error(`bug in multiproc: plain data with an unknown tag ${tag} at byte ${at - 1}`);
  }
}

// Pushed one by one, the array stays of V8's packed kind (a `new Array(length)` is holey, which
// structured clone writes key by key if the array is sent on), and its numbers unboxed. A long one
// is pushed in blocks joined by one concat(): pushed whole, 100,000 numbers were copied into fresh
// memory at each growth of the array (12 ms, most of it page faults).
function readNumbers(): number[] {
  const blocks: number[][] = [];
  for (let left = readUint32(); left > 0; left -= NUMBERS_BLOCK) {
    const block: number[] = [];
    for (let i = Math.min(left, NUMBERS_BLOCK); i > 0; i--) block.push(readFloat64());
    blocks.push(block);
  }
  const array = blocks.length === 1 ? (blocks[0] as number[]) : ([] as number[]).concat(...blocks);
  // Counted after its numbers, which hold no references: its index among the decoded is the same.
  keepDecoded(array);
  return array;
}

function readFloat64s(): Float64Array {
  const byteLength = 8 * readUint32();
  const array = new Float64Array(messageArrayBuffer(byteLength));
  new Uint8Array(array.buffer).set(input.subarray(at, at + byteLength));
  at += byteLength;
  keepDecoded(array);
  return array;
}

/** Longer runs of numbers are read in blocks of this many. */
const NUMBERS_BLOCK = 8192;

/** An object's keys as they were last met at one hash of their bytes, and how to make such an object. */
interface Shape {
  bytes: Uint8Array;
  keys: string[];
  build: ((read: () => unknown, keep: (object: object) => void) => Record<string, unknown>) | undefined;
  seen: number;
}
const shapes = new Array<Shape | undefined>(256).fill(undefined);
let compiling = true;

function readObject(): Record<string, unknown> {
  const count = readUint32();
  const length = readUint32();
  const start = at;
  const end = start + length;
  const hash = (length * 31 + count * 7 + (input[start + 5] as number) + (input[end - 1] as number) * 13) & 0xff;
  const shape = shapes[hash];
  if (shape !== undefined && sameBytes(shape.bytes, start, length)) {
    at = end;
    if (shape.build !== undefined) return shape.build(readValue, keepDecoded);
    if (++shape.seen === 2 && compiling) shape.build = compileShape(shape.keys);
    return fillObject(shape.keys);
  }
  const keys = new Array<string>(count);
  for (let i = 0; i < count; i++) keys[i] = readKey(input[at++] as number);
  shapes[hash] = { bytes: input.slice(start, end), keys, build: undefined, seen: 1 };
  return fillObject(keys);
}

function sameBytes(bytes: Uint8Array, start: number, length: number): boolean {
  if (bytes.length !== length) return false;
  for (let i = 0; i < length; i++) if (bytes[i] !== input[start + i]) return false;
  return true;
}

function fillObject(keys: string[]): Record<string, unknown> {
  const object: Record<string, unknown> = {};
  keepDecoded(object); // before its values, which may refer to it
  for (let i = 0; i < keys.length; i++) object[keys[i] as string] = readValue();
  return object;
}

// An object literal with the shape's keys, then filled by named stores: V8 makes it with its final
// hidden class at once, where keyed stores look up a transition per key.
function compileShape(keys: string[]): Shape['build'] {
  if (keys.length > 64) return undefined;
  const names = keys.map((key) => JSON.stringify(key));
  const source = `const o = {${names.map((name) => `${name}: undefined`).join(', ')}};\nk(o);\n${names.map((name) => `o[${name}] = r();`).join('\n')}\nreturn o;`;
  try {
    return new Function('r', 'k', source) as Shape['build'];
  } catch {
    compiling = false; // code generation from strings is disallowed here
    return undefined;
  }
}

function readString(tag: number): string {
  const length = readUint32();
  let text: string;
  if (tag === UTF16) {
    text = bufferOfInput().toString('utf16le', at, at + 2 * length);
    at += 2 * length;
  } else {
    if (length <= SHORT_STRING) {
      text = tableAscii(valueTable, at, length);
    } else {
      text = bufferOfInput().toString('latin1', at, at + length);
    }
    at += length;
  }
  return text;
}

// Decoded keys and short ASCII strings are looked up in small tables by a hash of their bytes:
// the same string as the last message's keeps objects of one shape on one hidden class, and
// skips building the string again (names, tags, units repeat from message to message too).
const keyTable = new Array<string | undefined>(256).fill(undefined);
const valueTable = new Array<string | undefined>(256).fill(undefined);

function readKey(tag: number): string {
  const start = at + 4;
  const length = uint32At(at);
  if (tag !== ASCII || length > SHORT_STRING) return readString(tag);
  at = start + length;
  return tableAscii(keyTable, start, length);
}

/** The `length` ASCII bytes at `start` as a string: the one in `table` if it has them. */
function tableAscii(table: (string | undefined)[], start: number, length: number): string {
  let hash = length;
  for (let i = 0; i < length; i++) hash = (hash * 31 + (input[start + i] as number)) & 0xff;
  const known = table[hash];
  if (known !== undefined && known.length === length && sameAscii(known, start)) return known;
  let text = '';
  for (let i = 0; i < length; i++) text += String.fromCharCode(input[start + i] as number);
  table[hash] = text;
  return text;
}

function sameAscii(text: string, start: number): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) !== input[start + i]) return false;
  return true;
}
