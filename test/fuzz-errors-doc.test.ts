/**
 * docs/errors.md's table cannot drift: each row's call is run and must give the error
 * class, code and exactly the message the table shows. SMOOTHCE_UPDATE_ERRORS_DOC=1 rewrites
 * the Error, Code and Message columns from what the calls give now (then review the diff).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import * as smoothce from '../lib/index';
import { native } from '../lib/core/native';

const DOC = path.resolve(__dirname, '..', 'docs', 'errors.md');
const UPDATE = process.env.SMOOTHCE_UPDATE_ERRORS_DOC === '1';

interface Row {
  line: number;
  what: string;
  call: string;
  cls: string;
  code: string;
  message: string;
}

const unescape = (s: string): string => s.replace(/\\\|/g, '|');
const escape = (s: string): string => s.replace(/\r?\n/g, ' ').replace(/\|/g, '\\|');

function rows(text: string): Row[] {
  const out: Row[] = [];
  // The table under "## Bad calls and what they get" (the codes table above it is test/error-codes.test.ts's).
  const start = text.split('\n').findIndex((line) => line.startsWith('## Bad calls'));
  if (start < 0) throw new Error('docs/errors.md: no "## Bad calls and what they get" section');
  text.split('\n').forEach((line, i) => {
    if (i < start || !line.startsWith('| ') || line.startsWith('| Bad input') || line.startsWith('| ---')) return;
    const cells = line.slice(2, -2).split(/ (?<!\\)\| /);
    const [what, call, cls, code, message] = [...cells.map((c) => c.trim()), '', '', '', ''];
    const span = /^`(.*)`$/.exec(call);
    if (!span) throw new Error(`docs/errors.md line ${i + 1}: the Call column must be one \`code\` span`);
    out.push({ line: i + 1, what, call: span[1], cls, code: code.replace(/^`|`$/g, ''), message: unescape(message) });
  });
  return out;
}

// What the calls may use besides the public API.
const x = smoothce.tensor(Float32Array.from({ length: 12 }, (_, i) => Math.sin(i)), [4, 3]);
const t = smoothce.tensor(new BigInt64Array([0n, 1n, 2n, 0n]), [4]);
function detached(n: number): Float32Array {
  const d = new Float32Array(n);
  structuredClone(d.buffer, { transfer: [d.buffer] });
  return d;
}
function disposed(input: smoothce.Tensor): unknown {
  const h = smoothce.toDevice(input, 'cpu');
  h.dispose();
  return smoothce.crossEntropy(h as unknown as smoothce.Tensor, t);
}
function nativeArgs(over: Record<string, unknown> = {}): Record<string, unknown> {
  return { input: x, target: t, weight: null, reduction: 1, ignoreIndex: -100n, labelSmoothing: 0, grad: false, gradOutput: null, device: 'cpu', ...over };
}
function detachingArgs(): Record<string, unknown> {
  const data = Float32Array.from(x.data);
  const args = nativeArgs({ input: { data, shape: [4, 3], dtype: 'float32' } });
  delete args.target;
  Object.defineProperty(args, 'target', {
    enumerable: true,
    get() {
      structuredClone(data.buffer, { transfer: [data.buffer] });
      return t;
    },
  });
  return args;
}
const scope = { ...smoothce, x, t, native: native(), detached, disposed, nativeArgs, detachingArgs };

// eslint-disable-next-line @typescript-eslint/no-empty-function
const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor as new (...args: string[]) => (...a: unknown[]) => Promise<unknown>;

async function outcome(call: string): Promise<{ cls: string; code: string; message: string }> {
  const names = Object.keys(scope);
  const fn = new AsyncFunction(...names, `return await (${call});`);
  try {
    await fn(...names.map((n) => (scope as Record<string, unknown>)[n]));
    return { cls: '(no error)', code: '-', message: 'returns a result' };
  } catch (err) {
    if (!(err instanceof Error)) return { cls: `(threw ${typeof err})`, code: '-', message: String(err) };
    const code = (err as { code?: unknown }).code;
    return { cls: err.constructor.name, code: typeof code === 'string' ? code : '(none)', message: err.message };
  }
}

afterEach(() => {
  delete (Object.prototype as Record<string, unknown>).labelSmoothing;
});

describe('docs/errors.md', () => {
  const text = fs.readFileSync(DOC, 'utf8');
  const table = rows(text);

  it('has a row for each kind of bad input (at least 50)', () => {
    expect(table.length).toBeGreaterThanOrEqual(50);
  });

  if (UPDATE) {
    it('rewrites the Error, Code and Message columns', async () => {
      const lines = text.split('\n');
      for (const r of table) {
        const o = await outcome(r.call);
        delete (Object.prototype as Record<string, unknown>).labelSmoothing;
        const code = o.code.startsWith('ERR_') ? `\`${o.code}\`` : o.code;
        lines[r.line - 1] = `| ${r.what} | \`${r.call}\` | ${o.cls} | ${code} | ${escape(o.message)} |`;
      }
      fs.writeFileSync(DOC, lines.join('\n'));
    });
    return;
  }

  it.each(table.map((r) => [r.line, r.what, r]))('line %i: %s', async (_line, _what, r) => {
    const row = r as Row;
    const o = await outcome(row.call);
    expect(o.cls, row.call).toBe(row.cls);
    expect(o.code, row.call).toBe(row.code);
    expect(escape(o.message), row.call).toBe(escape(row.message));
    // Every error smoothce throws has a code; only the caller's own error (from a getter) passes through as it is.
    if (o.cls !== '(no error)' && !/the caller getter failed/.test(o.message)) expect(o.code, row.call).toMatch(/^ERR_SMOOTHCE_[A-Z0-9_]+$/);
    // The contract behind the table: every message names what was wrong.
    if (o.cls !== '(no error)') expect(o.message.length).toBeGreaterThan(10);
  });
});
