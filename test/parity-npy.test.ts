import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatNpy, NpyError, parseNpy, readNpy, writeNpy } from '../lib/index';
import { python, tempDir } from './helpers/parity-oracle';

let dir: string;
let cleanup: () => void;

beforeAll(() => {
  ({ dir, cleanup } = tempDir('smoothce-npy-'));
  // numpy writes the reference files.
  python(
    `
import numpy as np, sys, os
d = sys.argv[1]
j = lambda n: os.path.join(d, n)
np.save(j('f4.npy'), np.arange(6, dtype='<f4').reshape(2, 3) / 7)
np.save(j('f8.npy'), np.array([1.5, np.nan, np.inf, -np.inf, -0.0, 1e-310], dtype='<f8'))
np.save(j('i8.npy'), np.array([[0, -1], [2**62, -2**63]], dtype='<i8'))
np.save(j('i4.npy'), np.array([-2**31, 2**31 - 1, 7], dtype='<i4'))
np.save(j('u1.npy'), np.array([0, 255, 3], dtype='|u1'))
np.save(j('scalar.npy'), np.array(2.25, dtype='<f8'))
np.save(j('empty.npy'), np.zeros((0, 3), dtype='<f4'))
np.save(j('be.npy'), np.array([1.25, -2.5, 3e300], dtype='>f8'))
np.save(j('fortran.npy'), np.asfortranarray(np.arange(6, dtype='<f4').reshape(2, 3)))
np.save(j('half.npy'), np.ones(3, dtype='<f2'))
with open(j('v2.npy'), 'wb') as f:
    np.lib.format.write_array(f, np.arange(4, dtype='<i4').reshape(2, 2), version=(2, 0))
`,
    [dir],
  );
});
afterAll(() => cleanup());

describe('.npy reader (files written by numpy)', () => {
  it('reads <f4 with its shape, in fresh aligned memory', () => {
    const a = readNpy(path.join(dir, 'f4.npy'));
    expect(a.dtype).toBe('float32');
    expect(a.descr).toBe('<f4');
    expect(a.shape).toEqual([2, 3]);
    expect(a.data).toBeInstanceOf(Float32Array);
    expect(Array.from(a.data as Float32Array)).toEqual([0, 1, 2, 3, 4, 5].map((v) => Math.fround(Math.fround(v) / 7)));
  });

  it('keeps NaN, infinities, -0 and subnormals in <f8', () => {
    const a = readNpy(path.join(dir, 'f8.npy'));
    const d = Array.from(a.data as Float64Array);
    expect(d[0]).toBe(1.5);
    expect(d[1]).toBeNaN();
    expect(d.slice(2, 4)).toEqual([Infinity, -Infinity]);
    expect(Object.is(d[4], -0)).toBe(true);
    expect(d[5]).toBe(1e-310);
  });

  it('reads <i8 beyond 2^53 exactly, <i4 and |u1', () => {
    expect(Array.from(readNpy(path.join(dir, 'i8.npy')).data as BigInt64Array)).toEqual([0n, -1n, 2n ** 62n, -(2n ** 63n)]);
    expect(Array.from(readNpy(path.join(dir, 'i4.npy')).data as Int32Array)).toEqual([-(2 ** 31), 2 ** 31 - 1, 7]);
    const u = readNpy(path.join(dir, 'u1.npy'));
    expect(u.dtype).toBe('uint8');
    expect(Array.from(u.data as Uint8Array)).toEqual([0, 255, 3]);
  });

  it('reads 0-d, empty, big-endian and version 2.0 files', () => {
    const s = readNpy(path.join(dir, 'scalar.npy'));
    expect(s.shape).toEqual([]);
    expect(Array.from(s.data as Float64Array)).toEqual([2.25]);
    const e = readNpy(path.join(dir, 'empty.npy'));
    expect(e.shape).toEqual([0, 3]);
    expect(e.data.length).toBe(0);
    const be = readNpy(path.join(dir, 'be.npy'));
    expect(be.descr).toBe('>f8');
    expect(Array.from(be.data as Float64Array)).toEqual([1.25, -2.5, 3e300]);
    const v2 = readNpy(path.join(dir, 'v2.npy'));
    expect(fs.readFileSync(path.join(dir, 'v2.npy'))[6]).toBe(2);
    expect(v2.shape).toEqual([2, 2]);
    expect(Array.from(v2.data as Int32Array)).toEqual([0, 1, 2, 3]);
  });

  it('rejects fortran_order, float16, truncated and non-.npy files with clear errors', () => {
    expect(() => readNpy(path.join(dir, 'fortran.npy'))).toThrow(/fortran\.npy: fortran_order arrays are not supported.*ascontiguousarray/);
    expect(() => readNpy(path.join(dir, 'half.npy'))).toThrow(/unsupported \.npy dtype '<f2'.*save float16\/bfloat16 arrays as float32/);
    const bytes = fs.readFileSync(path.join(dir, 'f4.npy'));
    expect(() => parseNpy(bytes.subarray(0, bytes.length - 1))).toThrow(/truncated \.npy data: shape \(2, 3\) of <f4 needs 24 bytes, file has 23/);
    expect(() => parseNpy(Buffer.concat([bytes, Buffer.from([0])]))).toThrow(/1 bytes after the data/);
    expect(() => parseNpy(Buffer.from('{"cases": []}'))).toThrow(NpyError);
    expect(() => readNpy(path.join(dir, 'nope.npy'))).toThrow(/nope\.npy: cannot read/);
  });
});

describe('.npy writer (read back by numpy)', () => {
  it('writes every dtype so that numpy.load gives the same values, dtype and shape', () => {
    const arrays: Record<string, [Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array, number[]]> = {
      w_f4: [new Float32Array([0.1, -0, NaN, Infinity, 3.5, -1e-40]), [2, 3]],
      w_f8: [new Float64Array([Math.PI, -Infinity, -0, 5e-324]), [4]],
      w_i8: [new BigInt64Array([2n ** 62n + 1n, -5n, 0n]), [3, 1]],
      w_i4: [new Int32Array([1, -2, 3, -4]), [2, 1, 2]],
      w_u1: [new Uint8Array([9, 255]), [2]],
      w_scalar: [new Float64Array([7]), []],
      w_empty: [new Float32Array(0), [0, 5]],
    };
    for (const [name, [data, shape]] of Object.entries(arrays)) writeNpy(path.join(dir, `${name}.npy`), data, shape);
    const out = python(
      `
import numpy as np, sys, os, json
d = sys.argv[1]
res = {}
for n in sys.argv[2:]:
    a = np.load(os.path.join(d, n + '.npy'))
    v = [repr(x) for x in a.reshape(-1).tolist()]
    res[n] = {'descr': a.dtype.str, 'shape': list(a.shape), 'values': v, 'c': bool(a.flags['C_CONTIGUOUS'])}
print(json.dumps(res))
`,
      [dir, ...Object.keys(arrays)],
    );
    const res = JSON.parse(out);
    expect(res.w_f4).toEqual({ descr: '<f4', shape: [2, 3], c: true, values: ['0.10000000149011612', '-0.0', 'nan', 'inf', '3.5', '-9.99994610111476e-41'] });
    expect(res.w_f8).toEqual({ descr: '<f8', shape: [4], c: true, values: ['3.141592653589793', '-inf', '-0.0', '5e-324'] });
    expect(res.w_i8).toEqual({ descr: '<i8', shape: [3, 1], c: true, values: [String(2n ** 62n + 1n), '-5', '0'] });
    expect(res.w_i4).toEqual({ descr: '<i4', shape: [2, 1, 2], c: true, values: ['1', '-2', '3', '-4'] });
    expect(res.w_u1).toEqual({ descr: '|u1', shape: [2], c: true, values: ['9', '255'] });
    expect(res.w_scalar).toEqual({ descr: '<f8', shape: [], c: true, values: ['7.0'] });
    expect(res.w_empty).toEqual({ descr: '<f4', shape: [0, 5], c: true, values: [] });
  });

  it('pads the header to 64 bytes and round-trips through parseNpy', () => {
    const data = new Float64Array([1, 2, 3, 4, 5, 6]);
    const bytes = formatNpy(data, [3, 2]);
    const headerEnd = 10 + bytes.readUInt16LE(8);
    expect(headerEnd % 64).toBe(0);
    expect(bytes[headerEnd - 1]).toBe(0x0a);
    const back = parseNpy(bytes);
    expect(back.shape).toEqual([3, 2]);
    expect(back.data).toEqual(data);
    expect(() => formatNpy(data, [4, 2])).toThrow(/shape \[4, 2\] needs 8 elements but data has 6/);
  });
});
