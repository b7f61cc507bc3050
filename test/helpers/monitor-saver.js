// The writer of test/monitor-state.test.ts's SIGKILL test: node test/helpers/monitor-saver.js FILE
// Continues the monitor saved in FILE (or a new one), then forever: observes 100 predictions
// (labelling half of them, leaving the rest pending, ~150 kB of state), saves to FILE, and
// prints one line after its first save. The parent kills it at a random moment.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { calibration, tensor } = require(path.join(__dirname, '..', '..', 'dist', 'index.js'));

const file = process.argv[2];
const m = fs.existsSync(file)
  ? calibration.Monitor.load(file)
  : new calibration.Monitor({ windows: [{ name: '1m', seconds: 60 }, { name: 'last500', rows: 500, keepRows: true }], maxPending: 1000 });
const k = 8;
let next = m.counts.observed;
let first = true;
for (;;) {
  const ids = [];
  const rows = new Float64Array(100 * k);
  for (let i = 0; i < 100; i++) {
    ids.push(next + i);
    for (let j = 0; j < k; j++) rows[i * k + j] = Math.sin(next + i + j * 0.37) * 3;
  }
  m.observe(ids, tensor(rows, [100, k]), { segment: `v${Math.floor(next / 1000) % 3}` });
  for (let i = 0; i < 100; i += 2) m.label(next + i, (next + i) % k);
  next += 100;
  m.save(file);
  if (first) {
    process.stdout.write('saved\n');
    first = false;
  }
}
