/**
 * The case-file format (`smoothce-cases`, version 1) as one JSON Schema (draft-07), and its
 * validator (ajv). lib/parity/cases.ts validates every file against it before reading the
 * values; what a schema cannot say (the number of values a shape needs, int64 range, .npy
 * contents, a gradient shaped like the input, unique names) is checked while reading.
 *
 * The validators compiled from it are in ./case-validate.ts, so that the package's public
 * declarations do not depend on ajv's.
 *
 * `x-expected` says, in words, what a value must be; `x-messages` overrides it per failing
 * keyword. Validation errors become CaseFormatError messages of the form
 * `<file>: case "<name>" (#i): <field>: expected <x-expected>, got <value>`.
 */
import { DTYPES } from '../core/tensor';

const DTYPE_NAMES = Object.keys(DTYPES);
const FLOAT_DTYPES = DTYPE_NAMES.filter((d) => DTYPES[d as keyof typeof DTYPES].float);

const TENSOR_TEXT = 'a tensor {"dtype", "shape", "data"} or {"dtype", "shape", "npy"}';

/** A tensor whose dtype is one of `dtypes` (or, with `dtypes` null, any lower-case name). */
function tensor(dtypes: readonly string[] | null, dtypeText: string): Record<string, unknown> {
  return {
    'x-expected': TENSOR_TEXT,
    // In order: the object's shape first (a non-object fails here), then "data" xor "npy".
    allOf: [
      {
        type: 'object',
        'x-expected': TENSOR_TEXT,
        required: ['dtype', 'shape'],
        properties: {
          dtype: dtypes ? { enum: dtypes, 'x-expected': dtypeText } : { type: 'string', pattern: '^[a-z][a-z0-9_]*$', 'x-expected': 'a dtype name' },
          shape: { type: 'array', items: { type: 'integer', minimum: 0, 'x-expected': 'a non-negative integer' }, 'x-expected': 'an array of non-negative integers' },
          // Values are checked while reading (their number, nesting and range depend on shape and dtype).
          data: { type: ['array', 'number', 'string'], 'x-expected': 'an array of values' },
          npy: { type: 'string', minLength: 1, 'x-expected': 'a path relative to the case file' },
        },
        additionalProperties: false,
      },
      { 'x-expected': 'exactly one of "data" and "npy"', oneOf: [{ required: ['data'] }, { required: ['npy'] }] },
    ],
  };
}

const NUMBER = {
  'x-expected': 'a number or "NaN", "Infinity", "-Infinity"',
  anyOf: [
    { type: 'number' },
    { enum: ['NaN', 'nan', 'Infinity', '+Infinity', 'inf', '+inf', '-Infinity', '-inf'] },
    { type: 'string', pattern: '^-?\\d+$' },
  ],
};

const INT64 = {
  'x-expected': 'an integer (a number, or a decimal string beyond 2^53)',
  anyOf: [{ type: 'integer' }, { type: 'string', pattern: '^\\s*[+-]?\\d+\\s*$' }],
};

/** Tensors of a case: smoothce's dtypes, or any dtype name in a case that expects an error. */
function caseTensors(anyDtype: boolean): Record<string, unknown> {
  const t = tensor(anyDtype ? null : DTYPE_NAMES, `one of ${DTYPE_NAMES.join(', ')}`);
  const floatT = anyDtype ? t : tensor(FLOAT_DTYPES, `a floating dtype (${FLOAT_DTYPES.join(', ')})`);
  return {
    properties: {
      input: t,
      target: t,
      weight: { 'x-expected': `${TENSOR_TEXT} or null`, if: { type: 'object' }, then: t, else: { type: 'null', 'x-expected': `${TENSOR_TEXT} or null` } },
      grad_output: {
        'x-expected': `a number, ${TENSOR_TEXT} or null`,
        if: { type: 'object' },
        then: floatT,
        else: { 'x-expected': `a number, ${TENSOR_TEXT} or null`, anyOf: [{ type: 'null' }, NUMBER] },
      },
    },
  };
}

const EXPECTS_ERROR = { required: ['expected'], properties: { expected: { type: 'object', required: ['error'] } } };

export const CASE_FILE_SCHEMA = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://github.com/smoothce/smoothce/case-file.schema.json',
  title: 'smoothce parity case file (format "smoothce-cases", version 1)',
  type: 'object',
  'x-expected': 'a case file object {"format": "smoothce-cases", "cases": [...]}',
  required: ['cases'],
  properties: {
    format: { const: 'smoothce-cases', 'x-expected': '"smoothce-cases"' },
    version: { type: 'integer', minimum: 1, 'x-expected': 'a positive integer' },
    torch: { type: ['string', 'null'], 'x-expected': 'a version string' },
    cases: { type: 'array', items: { $ref: '#/definitions/case' }, 'x-expected': 'an array of cases' },
  },
  // Other top-level keys are free metadata.
  definitions: {
    /** One tensor of smoothce's dtypes (parseTensor, the toMatchTorch matcher). */
    tensor: tensor(DTYPE_NAMES, `one of ${DTYPE_NAMES.join(', ')}`),
    case: {
      type: 'object',
      'x-expected': 'a case object',
      required: ['name', 'input', 'target', 'expected'],
      properties: {
        name: { type: 'string', minLength: 1, 'x-expected': 'a non-empty string' },
        input: { 'x-expected': TENSOR_TEXT },
        target: { 'x-expected': TENSOR_TEXT },
        weight: {},
        grad_output: {},
        options: {
          'x-expected': 'an object',
          type: ['object', 'null'],
          properties: {
            reduction: { enum: ['mean', 'sum', 'none'], 'x-expected': '"mean", "sum" or "none"' },
            ignore_index: { 'x-expected': INT64['x-expected'], anyOf: [{ type: 'null' }, ...INT64.anyOf] },
            // PyTorch converts a Python bool to a double.
            label_smoothing: { 'x-expected': NUMBER['x-expected'], anyOf: [{ type: ['null', 'boolean'] }, ...NUMBER.anyOf] },
          },
          additionalProperties: false,
        },
        expected: {
          type: 'object',
          'x-expected': '{"loss", "grad_input"} or {"error"}',
          if: { required: ['error'] },
          then: {
            properties: {
              error: {
                type: 'object',
                'x-expected': '{"type", "message"}',
                required: ['type', 'message'],
                properties: {
                  type: { type: 'string', 'x-expected': 'a string (e.g. "RuntimeError")' },
                  message: { type: 'string', 'x-expected': 'a string' },
                },
                additionalProperties: false,
              },
            },
            additionalProperties: false,
          },
          else: {
            required: ['loss'],
            properties: {
              loss: {
                'x-expected': `${TENSOR_TEXT} or a number`,
                if: { type: 'object' },
                then: tensor(FLOAT_DTYPES, `a floating dtype (${FLOAT_DTYPES.join(', ')})`),
                else: { ...NUMBER, 'x-expected': `${TENSOR_TEXT} or a number` },
              },
              grad_input: {
                'x-expected': `${TENSOR_TEXT} or null`,
                if: { type: 'object' },
                then: tensor(FLOAT_DTYPES, `a floating dtype (${FLOAT_DTYPES.join(', ')})`),
                else: { type: 'null', 'x-expected': `${TENSOR_TEXT} or null` },
              },
            },
            additionalProperties: false,
          },
        },
        deviation: { type: ['string', 'null'], minLength: 1, 'x-expected': 'a non-empty string saying why smoothce rejects this case' },
      },
      // Other keys are free metadata (cases.ts rejects near-misses of the known ones).
      if: EXPECTS_ERROR,
      then: caseTensors(true),
      else: caseTensors(false),
    },
  },
} as const;
