/**
 * One helper for every validation message, so that all errors read alike:
 *   Expected <what> for <parameter> but received <value>
 * TypeError for the wrong kind of value, RangeError for a value of the right kind
 * that is out of range or inconsistent with the other arguments.
 */

/** 'a' or 'an' for a word as it is read aloud ('an int64', 'an Int32Array', 'a Uint8Array'). */
export function article(word: string): string {
  return /^([aeio]|u(?!int))/i.test(word) ? 'an' : 'a';
}

/** Short, safe description of any value for an error message (never throws). */
export function describe(value: unknown): string {
  try {
    if (value === null) return 'null';
    if (value === undefined) return 'undefined';
    switch (typeof value) {
      case 'number':
        return `${Object.is(value, -0) ? '-0' : String(value)} of type number`;
      case 'bigint':
        return `${value}n of type bigint`;
      case 'string':
        return `${JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value)} of type string`;
      case 'boolean':
        return `${value} of type boolean`;
      case 'function':
        return 'a function';
      case 'symbol':
        return 'a symbol';
      default:
        break;
    }
    if (ArrayBuffer.isView(value)) {
      const name = Object.getPrototypeOf(value)?.constructor?.name ?? 'typed array';
      return `${article(name)} ${name} of length ${(value as unknown as { length?: number }).length ?? (value as ArrayBufferView).byteLength}`;
    }
    if (Array.isArray(value)) return `an array of length ${value.length}`;
    const ctor = Object.getPrototypeOf(value)?.constructor?.name;
    return ctor && ctor !== 'Object' ? `an instance of ${ctor}` : 'an object';
  } catch {
    return 'an unprintable value';
  }
}

export function typeError(parameter: string, expected: string, actual: unknown): TypeError {
  return new TypeError(`Expected ${expected} for ${parameter} but received ${describe(actual)}`);
}

export function rangeError(parameter: string, expected: string, actual: unknown): RangeError {
  return new RangeError(`Expected ${expected} for ${parameter} but received ${describe(actual)}`);
}

/** A RangeError whose message is already written in full (shape mismatches and the like). */
export function inconsistent(parameter: string, message: string): RangeError {
  return new RangeError(`Invalid ${parameter}: ${message}`);
}
