/**
 * Exact metrics across processes and machines through PyTorch's own distributed engine
 * (c10d: TCPStore rendezvous + Gloo), laid out as torch.distributed lays out its default
 * group (the 1.x or the 2.x layout: `storeLayout`), so Node ranks and Python ranks can join
 * one group.
 *
 *   const group = await distributed.init({ rank, worldSize, store: 'tcp://127.0.0.1:29500' });
 *   await group.allReduce(lossAccumulator);   // every rank ends with the global state
 *   await group.allReduceTensor(t, 'sum');
 *   await group.barrier();
 *   group.destroy();
 *
 * Defaults follow torchrun's environment: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT.
 */
import { ERROR_CODES, rangeError, typeError, type ErrorCode } from '../core/errors';
import { native } from '../core/native';
import { readOptions } from '../core/options';
import { replaceState } from '../core/state';
import { checkTensor, sharedTensor, type Tensor } from '../core/tensor';

export type ReduceOp = 'sum' | 'product' | 'min' | 'max';
export type Backend = 'gloo' | 'nccl';

export interface InitOptions {
  /** This process's rank, in [0, worldSize). Default: $RANK. */
  rank?: number;
  /** Number of ranks. Default: $WORLD_SIZE. */
  worldSize?: number;
  /** 'tcp://host:port' of the TCPStore (rank 0 hosts it). Default: tcp://$MASTER_ADDR:$MASTER_PORT. */
  store?: string;
  /** 'gloo' (CPU). 'nccl' needs a CUDA LibTorch with NCCL. Default 'gloo'. */
  backend?: Backend;
  /** How long to wait for other ranks, at init and in every collective. Default 30000. */
  timeoutMs?: number;
  /** Network interface for Gloo's pairs (as GLOO_SOCKET_IFNAME). Default: $GLOO_SOCKET_IFNAME, else
   * loopback when the store is on a loopback address, else the address of this host's name. */
  interface?: string;
  /** The store layout of torch.distributed 1.x (`'1.x'`) or 2.x (`'2.x'`): 2.x puts the group's
   * keys under `default_pg/0//cpu//` and has no start-up barrier. Every rank of a group must use
   * the same one. Default: the linked LibTorch's major version (`torchVersion()`), which is right
   * when the Python ranks run the same major version of torch. */
  storeLayout?: StoreLayout;
  /** Check before each collective that every rank issues the same one (collective, reduce op,
   * dtype, shape): the ranks all-gather a 16-int64 header first, and a mismatch rejects on every
   * rank with ERR_SMOOTHCE_DIST_MISMATCH instead of aborting a peer or giving a wrong result.
   * Every rank of a group must use the same setting; turn it off only where ranks that do not
   * speak the header (Python's torch.distributed) join. Default true. */
  checkCollectives?: boolean;
  /** The largest accumulator state (bytes of its JSON) allReduce() accepts from any rank; the
   * smallest value over the ranks applies. Default 268435456 (256 MiB). */
  maxStateBytes?: number;
}

export type StoreLayout = '1.x' | '2.x';

/** The store layout init() uses by default: the linked LibTorch's major version. */
export function defaultStoreLayout(): StoreLayout {
  return Number(native().torchVersion().split('.')[0]) >= 2 ? '2.x' : '1.x';
}

/** What allReduce() can combine: anything that serialises, deserialises and merges exactly
 * (and, to be updated in place, implements the `replaceState` protocol of lib/core/state.ts or keeps
 * its state in own enumerable properties). */
export interface Mergeable<T> {
  toJSON(): unknown;
  merge(other: T): unknown;
}

interface NativeDist {
  distAvailable(): boolean;
  distInit(o: object): Promise<unknown>;
  distAllReduce(h: unknown, t: Tensor, op: ReduceOp): Promise<Tensor>;
  distAllGather(h: unknown, t: Tensor): Promise<Tensor[]>;
  distBarrier(h: unknown): Promise<void>;
  distDestroy(h: unknown): void;
}

function nd(): NativeDist {
  return native() as unknown as NativeDist;
}

const OPTION_NAMES = ['rank', 'worldSize', 'store', 'backend', 'timeoutMs', 'interface', 'storeLayout', 'checkCollectives', 'maxStateBytes'];

/** Default for InitOptions.maxStateBytes. */
export const DEFAULT_MAX_STATE_BYTES = 256 * 1024 * 1024;

function envInt(name: string): number | undefined {
  const v = process.env[name];
  return v === undefined || v === '' ? undefined : Number(v);
}

function checkInt(name: string, value: unknown, lo: number, hi: number, what: string): number {
  if (typeof value !== 'number') throw typeError(name, what, value);
  if (!Number.isInteger(value) || value < lo || value > hi) throw rangeError(name, what, value);
  return value;
}

/** Parses 'tcp://host:port' (IPv6 hosts in brackets). */
export function parseStore(store: unknown): { host: string; port: number } {
  if (typeof store !== 'string') throw typeError('store', "a 'tcp://host:port' address", store);
  const m = /^tcp:\/\/(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$/.exec(store);
  if (!m) throw rangeError('store', "a 'tcp://host:port' address", store);
  const port = Number(m[2]);
  if (port < 1 || port > 65535) throw rangeError('store', 'a port in [1, 65535]', store);
  return { host: m[1].replace(/^\[|\]$/g, ''), port };
}

/** 64-bit FNV-1a of a string's UTF-16 code units, as a signed int64 (an accumulator class's tag). */
function fnv1a(text: string): bigint {
  let h = 0xcbf29ce484222325n;
  for (let i = 0; i < text.length; i++) h = BigInt.asUintN(64, (h ^ BigInt(text.charCodeAt(i))) * 0x100000001b3n);
  return BigInt.asIntN(64, h);
}

export class DistributedError extends Error {
  code: ErrorCode;
  constructor(message: string, code: ErrorCode, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'DistributedError';
    this.code = code;
  }
}

/**
 * The native layer says what an init failure was: "distributed init timed out (...)" when not
 * every rank arrived within the timeout, "distributed init failed (...)" for anything else (a
 * port in use, an unreachable host, a LibTorch limitation). A collective that fails is a
 * timeout when c10d/Gloo's own message says so, and ERR_SMOOTHCE_DIST otherwise (a peer that
 * closed its connection, say). The group's coordinates in the message ("timeout N ms") are
 * not read.
 */
function wrap(err: unknown, what: string, init: boolean): unknown {
  if (!(err instanceof Error)) return err;
  let code: ErrorCode;
  if (!init && /^distributed \w+ mismatch /.test(err.message)) {
    code = ERROR_CODES.DIST_MISMATCH;
  } else if (init) {
    code = /^distributed init timed out/.test(err.message) ? ERROR_CODES.DIST_TIMEOUT : ERROR_CODES.DIST_INIT;
  } else {
    const inner = err.message.replace(/^[^:]*\(rank \d+ of \d+, store [^)]*\)/, '');
    code = /timed out|time ?out/i.test(inner) ? ERROR_CODES.DIST_TIMEOUT : ERROR_CODES.DIST;
  }
  return new DistributedError(`${what}: ${err.message}`, code, err);
}

export class ProcessGroup {
  readonly rank: number;
  readonly worldSize: number;
  readonly backend: Backend;
  /** Whether each collective is checked first (InitOptions.checkCollectives). */
  readonly checkCollectives: boolean;
  readonly #maxStateBytes: number;
  #handle: unknown;
  #chain: Promise<unknown> = Promise.resolve();

  /** @internal use distributed.init() */
  constructor(handle: unknown, rank: number, worldSize: number, backend: Backend, checkCollectives = true, maxStateBytes = DEFAULT_MAX_STATE_BYTES) {
    this.#handle = handle;
    this.rank = rank;
    this.worldSize = worldSize;
    this.backend = backend;
    this.checkCollectives = checkCollectives;
    this.#maxStateBytes = maxStateBytes;
  }

  get destroyed(): boolean {
    return this.#handle === undefined;
  }

  /** Runs collectives one at a time, in call order (as every rank must issue them). */
  #enqueue<T>(what: string, op: (h: unknown) => Promise<T>): Promise<T> {
    const handle = this.#handle;
    if (handle === undefined) {
      return Promise.reject(new DistributedError(`${what}: the process group was destroyed; make a new one with distributed.init()`, ERROR_CODES.DIST_DESTROYED));
    }
    const run = this.#chain.then(
      () => op(handle),
      () => op(handle),
    );
    this.#chain = run.catch(() => undefined);
    return run.catch((err) => {
      throw wrap(err, what, false);
    });
  }

  /** Reduces a tensor over all ranks; returns the result (the argument is not modified). Its data
   * is copied when the call is made (collectives queue behind earlier ones), so the caller may
   * change, transfer or drop it at once. */
  allReduceTensor(tensor: Tensor, op: ReduceOp = 'sum'): Promise<Tensor> {
    const t = sharedTensor(checkTensor(tensor, 'tensor'));
    if (t.dtype !== 'float32' && t.dtype !== 'float64' && t.dtype !== 'int64') {
      throw typeError('tensor.dtype', 'float32, float64 or int64', t.dtype);
    }
    if (!['sum', 'product', 'min', 'max'].includes(op as string)) {
      throw typeError('op', "'sum', 'product', 'min' or 'max'", op);
    }
    return this.#enqueue('allReduceTensor', (h) => nd().distAllReduce(h, t, op));
  }

  /** Every rank's tensor, in rank order (same shape and dtype on every rank). Its data is copied
   * when the call is made, as for allReduceTensor. */
  allGather(tensor: Tensor): Promise<Tensor[]> {
    const t = sharedTensor(checkTensor(tensor, 'tensor'));
    return this.#enqueue('allGather', (h) => nd().distAllGather(h, t));
  }

  /**
   * Combines an accumulator (LossAccumulator, calibration.Accumulator, or anything with
   * toJSON(), merge() and a static fromJSON()) over all ranks. Each rank's state is
   * gathered and merged in rank order, so every rank ends with the same, exact global
   * state: `acc` is updated in place and also returned.
   *
   * The ranks first all-gather what each is about to send (its accumulator's class and the
   * length of its state), so every rank rejects alike, with ERR_SMOOTHCE_DIST_MISMATCH, when
   * the classes differ or a state cannot be read or merged, and with
   * ERR_SMOOTHCE_DIST_STATE_TOO_LARGE when any rank claims more than maxStateBytes (the
   * smallest over the ranks), before any rank allocates room for it.
   */
  async allReduce<T extends Mergeable<T>>(acc: T): Promise<T> {
    if (acc === null || typeof acc !== 'object' || typeof acc.toJSON !== 'function' || typeof acc.merge !== 'function') {
      throw typeError('accumulator', 'an accumulator with toJSON() and merge()', acc);
    }
    const Ctor = acc.constructor as { name?: string; fromJSON?: (json: unknown) => T };
    if (typeof Ctor.fromJSON !== 'function') {
      throw typeError('accumulator', 'an accumulator whose class has a static fromJSON()', acc);
    }
    const kind = String(Ctor.name || 'anonymous');
    const bytes = new TextEncoder().encode(JSON.stringify(acc.toJSON()));
    const claims = await this.allGather({
      data: new BigInt64Array([fnv1a(kind), BigInt(bytes.length), BigInt(this.#maxStateBytes)]),
      shape: [3],
      dtype: 'int64',
    });
    const rows = claims.map((c) => c.data as BigInt64Array);
    const mismatch = (message: string, cause?: unknown): DistributedError =>
      new DistributedError(`allReduce (rank ${this.rank} of ${this.worldSize}): ${message}`, ERROR_CODES.DIST_MISMATCH, cause);
    const other = rows.findIndex((r) => r[0] !== rows[0][0]);
    if (other >= 0) {
      throw mismatch(
        `the ranks disagree on the accumulator class: rank 0 sent ${rows[0][0] === fnv1a(kind) ? kind : 'another class'}, rank ${other} ${rows[other][0] === fnv1a(kind) ? kind : 'another class'} (this rank: ${kind}); every rank must all-reduce the same kind of accumulator in the same order`,
      );
    }
    const limit = rows.reduce((m, r) => (r[2] < m ? r[2] : m), rows[0][2]);
    for (let r = 0; r < rows.length; r++) {
      if (rows[r][1] < 0n || rows[r][1] > limit) {
        throw new DistributedError(
          `allReduce (rank ${this.rank} of ${this.worldSize}): rank ${r} claims an accumulator state of ${rows[r][1]} bytes, past maxStateBytes (${limit}, the smallest over the ranks); nothing was allocated for it`,
          ERROR_CODES.DIST_STATE_TOO_LARGE,
        );
      }
    }
    const width = Number(rows.reduce((m, r) => (r[1] > m ? r[1] : m), 0n));
    const padded = new Uint8Array(width + 8);
    new DataView(padded.buffer).setBigUint64(0, BigInt(bytes.length), true);
    padded.set(bytes, 8);
    const parts = await this.allGather({ data: padded, shape: [width + 8], dtype: 'uint8' });
    const decoder = new TextDecoder('utf-8', { fatal: true });
    let merged: T | undefined;
    for (let r = 0; r < parts.length; r++) {
      const buf = parts[r].data as Uint8Array;
      const n = new DataView(buf.buffer, buf.byteOffset, 8).getBigUint64(0, true);
      if (n !== BigInt.asUintN(64, rows[r][1])) throw mismatch(`rank ${r} sent ${n} bytes of state after claiming ${rows[r][1]}`);
      let state: T;
      try {
        state = Ctor.fromJSON(JSON.parse(decoder.decode(buf.subarray(8, 8 + Number(n)))));
      } catch (err) {
        throw mismatch(`rank ${r}'s ${kind} state was refused: ${(err as Error)?.message ?? String(err)}`, err);
      }
      if (merged === undefined) merged = state;
      else {
        try {
          merged.merge(state);
        } catch (err) {
          throw mismatch(`rank ${r}'s ${kind} cannot be merged with rank 0's (created with other options?): ${(err as Error)?.message ?? String(err)}`, err);
        }
      }
    }
    const global = Ctor.fromJSON(JSON.parse(JSON.stringify(merged!.toJSON())));
    const replace = (acc as unknown as Record<symbol, unknown>)[replaceState];
    if (typeof replace === 'function') replace.call(acc, global);
    else Object.assign(acc, global);
    return acc;
  }

  /** Waits until every rank has reached the barrier. */
  barrier(): Promise<void> {
    return this.#enqueue('barrier', (h) => nd().distBarrier(h));
  }

  /** Leaves the group and closes its sockets. Safe to call more than once. */
  destroy(): void {
    const h = this.#handle;
    this.#handle = undefined;
    if (h !== undefined) nd().distDestroy(h);
  }
}

/** Whether this build of the addon has c10d with Gloo. */
export function available(): boolean {
  return nd().distAvailable();
}

/**
 * Joins (or, as rank 0, hosts) a process group. Every rank calls it with the same store
 * address and worldSize; it resolves once all ranks have joined, and rejects with a
 * DistributedError: code ERR_SMOOTHCE_DIST_TIMEOUT when they have not within timeoutMs,
 * ERR_SMOOTHCE_DIST_INIT when init failed for another reason (the store's port in use, say).
 */
export async function init(options: InitOptions = {}): Promise<ProcessGroup> {
  const o = readOptions(options, OPTION_NAMES, 'distributed.init');
  const worldSize = checkInt('worldSize', o.worldSize ?? envInt('WORLD_SIZE'), 1, 65536, 'an integer in [1, 65536] (or $WORLD_SIZE)');
  const rank = checkInt('rank', o.rank ?? envInt('RANK'), 0, worldSize - 1, `an integer in [0, ${worldSize}) (or $RANK)`);
  let storeAddr = o.store;
  if (storeAddr === undefined) {
    const addr = process.env.MASTER_ADDR;
    const port = process.env.MASTER_PORT;
    if (!addr || !port) {
      throw typeError('store', "a 'tcp://host:port' address (or $MASTER_ADDR and $MASTER_PORT)", undefined);
    }
    storeAddr = `tcp://${addr.includes(':') ? `[${addr}]` : addr}:${port}`;
  }
  const { host, port } = parseStore(storeAddr);
  const backend = o.backend ?? 'gloo';
  if (backend !== 'gloo' && backend !== 'nccl') throw typeError('backend', "'gloo' or 'nccl'", backend);
  const timeoutMs = checkInt('timeoutMs', o.timeoutMs ?? 30000, 1, 86_400_000, 'an integer number of milliseconds in [1, 86400000]');
  const iface = o.interface ?? process.env.GLOO_SOCKET_IFNAME;
  if (iface !== undefined && typeof iface !== 'string') throw typeError('interface', 'a network interface name', iface);
  const layout = o.storeLayout;
  if (layout !== undefined && layout !== '1.x' && layout !== '2.x') {
    if (typeof layout !== 'string') throw typeError('storeLayout', "'1.x' or '2.x'", layout);
    throw rangeError('storeLayout', "'1.x' or '2.x'", layout);
  }
  const checkCollectives = o.checkCollectives ?? true;
  if (typeof checkCollectives !== 'boolean') throw typeError('checkCollectives', 'a boolean', checkCollectives);
  const maxStateBytes = o.maxStateBytes ?? DEFAULT_MAX_STATE_BYTES;
  if (typeof maxStateBytes !== 'number') throw typeError('maxStateBytes', 'an integer number of bytes in [0, 2^31 - 9]', maxStateBytes);
  if (!Number.isInteger(maxStateBytes) || maxStateBytes < 0 || maxStateBytes > 2 ** 31 - 9) {
    throw rangeError('maxStateBytes', 'an integer number of bytes in [0, 2^31 - 9]', maxStateBytes);
  }
  if (!available()) {
    throw new DistributedError(
      'distributed.init: this build of smoothce has no c10d/Gloo support (install libgloo-dev and rebuild: npm run build:native)',
      ERROR_CODES.DIST_UNAVAILABLE,
    );
  }
  if (backend === 'nccl') {
    throw new DistributedError(
      `distributed.init: backend 'nccl' needs a CUDA LibTorch with NCCL; this addon was built against LibTorch ${native().torchVersion()} without it (use 'gloo')`,
      ERROR_CODES.DIST_UNAVAILABLE,
    );
  }
  let handle: unknown;
  try {
    const storeLayout = (layout ?? defaultStoreLayout()) === '2.x' ? 2 : 1;
    handle = await nd().distInit({ host, port, rank, worldSize, backend, timeoutMs, interface: iface || undefined, storeLayout, checkCollectives });
  } catch (err) {
    throw wrap(err, `distributed.init (rank ${rank} of ${worldSize}, store ${storeAddr}, timeout ${timeoutMs} ms)`, true);
  }
  return new ProcessGroup(handle, rank, worldSize, backend, checkCollectives, maxStateBytes);
}

