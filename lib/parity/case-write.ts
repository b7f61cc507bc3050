/**
 * Writing a case file: inline JSON for small tensors, .npy files in `<name>.data/` next to
 * it for large ones. Numbers are written so that they read back bit for bit.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isDType } from '../core/tensor';
import { CASE_FORMAT, CASE_FORMAT_VERSION, isExpectedError, type CaseFile, type CaseTensor, type ParityCase } from './case-types';
import { formatNpy } from './npy';

/** Shortest decimal that reads back as the same float32. */
function float32Text(v: number): string {
  for (let p = 1; p <= 9; p++) {
    const s = v.toPrecision(p);
    if (Math.fround(Number(s)) === v) return String(Number(s));
  }
  return String(v);
}

function numberText(v: number, f32: boolean): string {
  if (Number.isNaN(v)) return '"NaN"';
  if (v === Infinity) return '"Infinity"';
  if (v === -Infinity) return '"-Infinity"';
  if (Object.is(v, -0)) return '-0.0';
  return f32 ? float32Text(v) : String(v);
}

function dataText(t: CaseTensor): string {
  const parts: string[] = new Array(t.data.length);
  if (t.data instanceof BigInt64Array) {
    for (let i = 0; i < t.data.length; i++) {
      const b = t.data[i];
      parts[i] = b >= -(2n ** 53n) && b <= 2n ** 53n ? String(b) : `"${b}"`;
    }
  } else {
    const f32 = t.data instanceof Float32Array;
    for (let i = 0; i < t.data.length; i++) parts[i] = numberText(t.data[i] as number, f32);
  }
  return `[${parts.join(', ')}]`;
}

export interface WriteOptions {
  /** Tensors with more elements than this go to .npy files (default 10000; Infinity: never). */
  npyThreshold?: number;
  /** The torch version to record (written as "torch"). */
  torch?: string;
}

function safeName(s: string): string {
  return s.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 100) || 'case';
}

/**
 * Writes a case file. Tensors above `npyThreshold` elements are written as .npy files in
 * `<name>.data/` next to it and referenced by relative path. Returns the files written.
 */
export function writeCaseFile(file: string, cases: readonly ParityCase[] | CaseFile, options: WriteOptions = {}): string[] {
  const list = Array.isArray(cases) ? (cases as readonly ParityCase[]) : (cases as CaseFile).cases;
  const torch = options.torch ?? (Array.isArray(cases) ? undefined : (cases as CaseFile).torch);
  const threshold = options.npyThreshold ?? 10_000;
  const dir = path.dirname(path.resolve(file));
  const dataDirName = `${path.basename(file).replace(/\.json$/i, '')}.data`;
  const written: string[] = [];
  const names = new Set<string>();
  let madeDir = false;

  const tensorText = (t: CaseTensor, caseName: string, field: string): string => {
    const head = `{"dtype": ${JSON.stringify(t.dtype)}, "shape": ${JSON.stringify(t.shape)}`;
    if (t.data.length <= threshold || !isDType(t.dtype)) return `${head}, "data": ${dataText(t)}}`;
    let base = `${safeName(caseName)}.${field}`;
    for (let k = 2; names.has(base); k++) base = `${safeName(caseName)}.${field}.${k}`;
    names.add(base);
    const rel = `${dataDirName}/${base}.npy`;
    if (!madeDir) {
      fs.mkdirSync(path.join(dir, dataDirName), { recursive: true });
      madeDir = true;
    }
    const target = path.join(dir, rel);
    fs.writeFileSync(target, formatNpy(t.data, t.shape));
    written.push(target);
    return `${head}, "npy": ${JSON.stringify(rel)}}`;
  };

  const caseTexts = list.map((c) => {
    const o = c.options;
    const ig = o.ignoreIndex >= -(2n ** 53n) && o.ignoreIndex <= 2n ** 53n ? String(o.ignoreIndex) : `"${o.ignoreIndex}"`;
    const lines = [
      `"name": ${JSON.stringify(c.name)}`,
      `"input": ${tensorText(c.input, c.name, 'input')}`,
      `"target": ${tensorText(c.target, c.name, 'target')}`,
      `"weight": ${c.weight ? tensorText(c.weight, c.name, 'weight') : 'null'}`,
      `"options": {"reduction": ${JSON.stringify(o.reduction)}, "ignore_index": ${ig}, "label_smoothing": ${numberText(o.labelSmoothing, false)}}`,
      `"grad_output": ${
        c.gradOutput === null ? 'null' : typeof c.gradOutput === 'number' ? numberText(c.gradOutput, false) : tensorText(c.gradOutput, c.name, 'grad_output')
      }`,
    ];
    if (isExpectedError(c.expected)) {
      lines.push(`"expected": {"error": ${JSON.stringify(c.expected.error)}}`);
    } else {
      const e = c.expected;
      lines.push(
        `"expected": {\n      "loss": ${tensorText(e.loss, c.name, 'loss')},\n      "grad_input": ${
          e.gradInput ? tensorText(e.gradInput, c.name, 'grad_input') : 'null'
        }}`,
      );
    }
    if (c.deviation !== undefined) lines.push(`"deviation": ${JSON.stringify(c.deviation)}`);
    return `    {\n      ${lines.join(',\n      ')}\n    }`;
  });
  const header = [`"format": "${CASE_FORMAT}"`, `"version": ${CASE_FORMAT_VERSION}`];
  if (torch !== undefined) header.push(`"torch": ${JSON.stringify(torch)}`);
  const text = `{\n  ${header.join(',\n  ')},\n  "cases": [\n${caseTexts.join(',\n')}\n  ]\n}\n`;
  fs.writeFileSync(file, text);
  written.unshift(path.resolve(file));
  return written;
}
