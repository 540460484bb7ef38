export interface JsonStructure {
  /** The first key that appears twice in one object, if any. */
  readonly duplicateKey: string | undefined;
  /** How deep objects and arrays nest (a scalar is 0, `[]` is 1). */
  readonly depth: number;
}

/**
 * JSON.parse keeps the last of two equal keys silently; a body like {"PK":"a","PK":"b"} is ambiguous, so it is
 * refused. Runs on text JSON.parse already accepted, so it only tracks structure and object keys.
 */
export function scanJsonStructure(text: string): JsonStructure {
  const stack: (Set<string> | null)[] = [];
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let j = i + 1;
      let escaped = false;
      for (;;) {
        const d = text.charCodeAt(j);
        if (d === 0x5c /* \ */) {
          escaped = true;
          j += 2;
        } else if (d === 0x22) {
          break;
        } else {
          j += 1;
        }
      }
      const keys = stack[stack.length - 1];
      if (keys && expectKey) {
        const key = escaped ? (JSON.parse(text.slice(i, j + 1)) as string) : text.slice(i + 1, j);
        if (keys.has(key)) return { duplicateKey: key, depth: Math.max(depth, stack.length) };
        keys.add(key);
        expectKey = false;
      }
      i = j;
    } else if (c === 0x7b /* { */) {
      stack.push(new Set());
      if (stack.length > depth) depth = stack.length;
      expectKey = true;
    } else if (c === 0x5b /* [ */) {
      stack.push(null);
      if (stack.length > depth) depth = stack.length;
      expectKey = false;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
      expectKey = false;
    } else if (c === 0x2c /* , */) {
      expectKey = stack[stack.length - 1] !== null && stack.length > 0;
    }
  }
  return { duplicateKey: undefined, depth };
}
