/**
 * What a process group listens on (docs/security.md): the c10d store that rank 0 hosts, and
 * Gloo's ports on every rank. The listening sockets of each rank process are found through
 * /proc/<pid>/fd (socket inodes) and /proc/net/tcp{,6} (their local addresses).
 *
 * The store binds the address of `store` with LibTorch 2.1 and later (smoothce hands c10d a
 * socket bound there, TCPStoreOptions::masterListenFd) and every interface before 2.1 (c10d's
 * listen takes no address). Gloo binds its device's address, 127.0.0.1 for a loopback store.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { distributed, torchVersion } from '../lib/index';
import { freePort } from './helpers/free-port';

const RANK = path.join(__dirname, 'helpers', 'listen-rank.js');

interface Listener {
  address: string; // '127.0.0.1', '0.0.0.0', '::', '::ffff:127.0.0.1', ...
  port: number;
}

function ipv4(hex: string): string {
  // /proc/net/tcp writes the address as one 32-bit word in host (little-endian) order.
  const n = Number.parseInt(hex, 16);
  return [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, n >>> 24].join('.');
}

function ipv6(hex: string): string {
  const words: string[] = [];
  for (let i = 0; i < 32; i += 8) {
    const w = hex.slice(i, i + 8).match(/../g)!.reverse().join(''); // each 32-bit word little-endian
    words.push(w.slice(0, 4), w.slice(4));
  }
  const groups = words.map((g) => Number.parseInt(g, 16));
  if (groups.every((g) => g === 0)) return '::';
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${groups[6] >>> 8}.${groups[6] & 255}.${groups[7] >>> 8}.${groups[7] & 255}`;
  }
  return groups.map((g) => g.toString(16)).join(':');
}

/** The TCP sockets in LISTEN state that process `pid` holds. */
function listeners(pid: number): Listener[] {
  const inodes = new Set<string>();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]);
    } catch {
      // closed meanwhile
    }
  }
  const out: Listener[] = [];
  for (const [file, decode] of [
    [`/proc/${pid}/net/tcp`, ipv4],
    [`/proc/${pid}/net/tcp6`, ipv6],
  ] as const) {
    if (!fs.existsSync(file)) continue;
    for (const line of fs.readFileSync(file, 'utf8').trim().split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      const [addr, port] = f[1].split(':');
      if (f[3] === '0A' && inodes.has(f[9])) out.push({ address: decode(addr), port: Number.parseInt(port, 16) });
    }
  }
  return out;
}

function startRank(job: Record<string, unknown>): Promise<{ child: ChildProcessWithoutNullStreams; pid: number }> {
  const child = spawn(process.execPath, [RANK, JSON.stringify(job)], { stdio: 'pipe' });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve({ child, pid: JSON.parse(out.split('\n')[0]).pid as number });
    });
    child.stderr.on('data', (d) => (err += d));
    child.on('exit', (code) => reject(new Error(`rank exited with ${code} before it was ready: ${err}`)));
  });
}

function stop(child: ChildProcessWithoutNullStreams): Promise<number | null> {
  return new Promise((resolve) => {
    child.removeAllListeners('exit');
    child.on('exit', (code) => resolve(code));
    child.stdin.end();
  });
}

const [major, minor] = torchVersion().split('.').map(Number);
const bindsStoreAddress = major > 2 || (major === 2 && minor >= 1);
const WILDCARD = new Set(['0.0.0.0', '::']);

describe('what a process group listens on', () => {
  // Skipped only in a build without c10d/Gloo (distributed.available() false): no group can start there.
  it.skipIf(!distributed.available())(
    `the store on ${bindsStoreAddress ? 'the store address only' : 'every interface'} (LibTorch ${torchVersion()}), Gloo on 127.0.0.1`,
    async () => {
      const port = await freePort();
      const store = `tcp://127.0.0.1:${port}`;
      const ranks = await Promise.all([0, 1].map((rank) => startRank({ rank, worldSize: 2, store })));
      try {
        const [l0, l1] = ranks.map((r) => listeners(r.pid));
        const storeListeners = l0.filter((l) => l.port === port);
        expect(storeListeners.length, JSON.stringify(l0)).toBe(1);
        if (bindsStoreAddress) {
          expect(storeListeners[0].address).toBe('127.0.0.1');
        } else {
          // c10d 1.x: Socket::listen(port) binds the wildcard address ([::] dual-stack, else 0.0.0.0).
          expect(WILDCARD.has(storeListeners[0].address), storeListeners[0].address).toBe(true);
        }
        // Rank 1 hosts no store, and nothing but the store listens on a wildcard address: Gloo
        // listens (if it still does after connecting its pairs) on the device's 127.0.0.1.
        expect(l1.filter((l) => l.port === port)).toEqual([]);
        for (const l of [...l0.filter((x) => x.port !== port), ...l1]) expect(['127.0.0.1', '::ffff:127.0.0.1']).toContain(l.address);
      } finally {
        const codes = await Promise.all(ranks.map((r) => stop(r.child)));
        expect(codes).toEqual([0, 0]);
      }
    },
  );
});
