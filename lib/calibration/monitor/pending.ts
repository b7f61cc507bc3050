/** The Monitor's unlabelled predictions: their ids, and how they are held. */
import { rangeError, typeError } from '../../core/errors';
import type { Row } from './windows';

export interface Pending {
  row: Row;
  t: number;
  /** The segment it was observed under (null: none). */
  segment: string | null;
}

export function checkId(id: unknown, name: string): string | number {
  if (typeof id === 'string') {
    if (id.length < 1 || id.length > 256) throw rangeError(name, 'a string of 1 to 256 characters', id);
    return id;
  }
  if (typeof id === 'number') {
    if (!Number.isSafeInteger(id)) throw rangeError(name, 'a safe integer', id);
    return id;
  }
  throw typeError(name, 'a string or an integer', id);
}
