// Writes the ONNX protobuf bytes of a linear classifier, logits = x · W + b, with no protobuf
// library: the handful of ModelProto fields it needs are encoded by hand (field numbers from
// onnx/onnx.proto). Used by examples/onnx/make-model.js and test/framework-tensor.test.ts.
'use strict';

function varint(value) {
  const out = [];
  let v = BigInt(value);
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    out.push(byte);
  } while (v > 0n);
  return out;
}

function concat(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A varint field (wire type 0). */
const int = (field, value) => Uint8Array.from([...varint((field << 3) | 0), ...varint(value)]);
/** A length-delimited field (wire type 2): bytes, a string or a message. */
const bytes = (field, value) => concat([Uint8Array.from([...varint((field << 3) | 2), ...varint(value.length)]), value]);
const str = (field, value) => bytes(field, new TextEncoder().encode(value));
const msg = (field, ...parts) => bytes(field, concat(parts));

const FLOAT = 1;

/** ValueInfoProto of a float tensor; a string dimension is symbolic (dim_param). */
function valueInfo(field, name, dims) {
  const dimProtos = dims.map((d) => msg(1, typeof d === 'number' ? int(1, d) : str(2, d)));
  return msg(field, str(1, name), msg(2, msg(1, int(1, FLOAT), msg(2, ...dimProtos))));
}

/** TensorProto of float data (raw_data, little-endian). */
function initializer(name, dims, data) {
  const raw = new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
  return msg(5, ...dims.map((d) => int(1, d)), int(2, FLOAT), str(8, name), bytes(9, raw));
}

const node = (inputs, output, op) => msg(1, ...inputs.map((i) => str(1, i)), str(2, output), str(3, `${op.toLowerCase()}0`), str(4, op));

/**
 * A model with input "x" (batch, features) float32 and output "logits" (batch, classes):
 * MatMul by w (features × classes, row-major Float32Array) then Add b (classes).
 * ir_version 8, opset 13.
 */
function linearClassifierOnnx(w, b, features, classes) {
  if (w.length !== features * classes || b.length !== classes) throw new RangeError('linearClassifierOnnx: sizes do not match');
  const graph = msg(
    7,
    node(['x', 'W'], 'h', 'MatMul'),
    node(['h', 'B'], 'logits', 'Add'),
    str(2, 'linear'),
    initializer('W', [features, classes], w),
    initializer('B', [classes], b),
    valueInfo(11, 'x', ['batch', features]),
    valueInfo(12, 'logits', ['batch', classes]),
  );
  return concat([int(1, 8), str(2, 'smoothce-example'), graph, msg(8, str(1, ''), int(2, 13))]);
}

/**
 * Nearest-class-mean weights of a linear classifier: logit_c = s·(x·μ_c − |μ_c|²/2), for n rows of
 * `features` values in x (row-major) with class labels y (numbers or bigints) in [0, classes).
 * w is [features, classes] row-major, b is [classes].
 */
function classMeans(x, y, n, s, features = 64, classes = 10) {
  const mu = new Float64Array(features * classes);
  const count = new Float64Array(classes);
  for (let i = 0; i < n; i++) {
    const c = Number(y[i]);
    count[c]++;
    for (let j = 0; j < features; j++) mu[j * classes + c] += x[i * features + j];
  }
  const w = new Float32Array(features * classes);
  const b = new Float32Array(classes);
  for (let c = 0; c < classes; c++) {
    let sq = 0;
    for (let j = 0; j < features; j++) {
      const m = mu[j * classes + c] / count[c];
      w[j * classes + c] = s * m;
      sq += m * m;
    }
    b[c] = (-s * sq) / 2;
  }
  return { w, b };
}

module.exports = { linearClassifierOnnx, classMeans };
