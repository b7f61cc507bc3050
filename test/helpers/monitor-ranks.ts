/**
 * Runs test/helpers/monitor-rank.js once per state, as the ranks of one distributed group on
 * `store`, and resolves with what each rank printed last (JSON): the monitor and monitor-segments
 * tests all-reduce their monitors through it.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';

const SCRIPT = path.join(__dirname, 'monitor-rank.js');

export function runMonitorRanks<T>(states: readonly { toJSON(): unknown }[], store: string, now: number): Promise<T[]> {
  return Promise.all(
    states.map(
      (m, rank) =>
        new Promise<T>((resolve, reject) => {
          const job = JSON.stringify({ rank, worldSize: states.length, store, state: m.toJSON(), now });
          const child = spawn(process.execPath, [SCRIPT, job], { stdio: ['ignore', 'pipe', 'pipe'] });
          let out = '';
          let err = '';
          child.stdout.on('data', (d) => (out += d));
          child.stderr.on('data', (d) => (err += d));
          child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!) as T) : reject(new Error(`rank ${rank} exited ${code}: ${err}`))));
        }),
    ),
  );
}
