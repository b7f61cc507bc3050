/**
 * The case-file schema (./case-schema.ts) compiled with ajv, once, and the translation of an
 * ajv error into the one problem a CaseFormatError reports. Internal: not re-exported.
 */
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import { codedError, ERROR_CODES } from '../core/errors';
import { CASE_FILE_SCHEMA } from './case-schema';

let compiled: { file: ValidateFunction; case: ValidateFunction; tensor: ValidateFunction } | undefined;

function validators(): { file: ValidateFunction; case: ValidateFunction; tensor: ValidateFunction } {
  if (!compiled) {
    const ajv = new Ajv({ allErrors: false, verbose: true, strict: true, strictTypes: false, strictRequired: false, allowUnionTypes: true });
    ajv.addKeyword('x-expected');
    ajv.addKeyword('x-messages');
    const file = ajv.compile(CASE_FILE_SCHEMA);
    const one = ajv.getSchema(`${CASE_FILE_SCHEMA.$id}#/definitions/case`);
    const tensorOnly = ajv.getSchema(`${CASE_FILE_SCHEMA.$id}#/definitions/tensor`);
    if (!one || !tensorOnly) throw codedError(ERROR_CODES.CASE_FORMAT, 'the case-file schema lacks a definition (a bug in smoothce)');
    compiled = { file, case: one, tensor: tensorOnly };
  }
  return compiled;
}

/** The compiled validator of a whole case file (ajv, compiled once). */
export function caseFileValidator(): ValidateFunction {
  return validators().file;
}

/** The compiled validator of one case. */
export function caseValidator(): ValidateFunction {
  return validators().case;
}

/** The compiled validator of one tensor. */
export function tensorValidator(): ValidateFunction {
  return validators().tensor;
}

/** Where an ajv error is, and what was expected there, in words. */
export interface SchemaProblem {
  /** JSON-pointer segments of the offending value (a missing key included). */
  path: string[];
  expected: string;
  /** The offending value (undefined when missing). */
  value: unknown;
  /** The key that is not allowed there, for unknown keys. */
  unknownKey?: { key: string; known: string[] };
}

function decode(segment: string): string {
  return segment.replace(/~1/g, '/').replace(/~0/g, '~');
}

/** The one error to report: the last (anyOf/oneOf report after their branches), skipping if/then bookkeeping. */
export function schemaProblem(errors: readonly ErrorObject[]): SchemaProblem {
  const useful = errors.filter((e) => e.keyword !== 'if');
  const e = useful[useful.length - 1] ?? errors[errors.length - 1];
  const path = e.instancePath === '' ? [] : e.instancePath.slice(1).split('/').map(decode);
  const parent = (e.parentSchema ?? {}) as Record<string, unknown>;
  const props = (parent.properties ?? {}) as Record<string, Record<string, unknown>>;
  const messages = (parent['x-messages'] ?? {}) as Record<string, string>;
  if (e.keyword === 'required') {
    const key = (e.params as { missingProperty: string }).missingProperty;
    return { path: [...path, key], expected: String(props[key]?.['x-expected'] ?? `a "${key}"`), value: undefined };
  }
  if (e.keyword === 'additionalProperties') {
    const key = (e.params as { additionalProperty: string }).additionalProperty;
    return { path: [...path, key], expected: 'no such key', value: (e.data as Record<string, unknown>)[key], unknownKey: { key, known: Object.keys(props) } };
  }
  const expected = messages[e.keyword] ?? (parent['x-expected'] as string | undefined) ?? (e.message ?? 'a valid value');
  return { path, expected, value: e.data };
}
