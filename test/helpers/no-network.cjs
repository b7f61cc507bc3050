// Preloaded with `node -r test/helpers/no-network.cjs ...` (test/supply-chain.test.ts): every way
// out to the network throws, and every child process started is recorded. At exit, writes
// {"network": [...attempts], "spawned": [...commands]} to $SMOOTHCE_NO_NETWORK_REPORT.
'use strict';
const fs = require('node:fs');
const net = require('node:net');
const dns = require('node:dns');
const childProcess = require('node:child_process');

const report = { network: [], spawned: [] };
const refuse = (what) =>
  function refused() {
    report.network.push(what);
    throw new Error(`no-network: ${what} was called`);
  };
net.Socket.prototype.connect = refuse('net.Socket.connect');
net.connect = refuse('net.connect');
net.createConnection = refuse('net.createConnection');
dns.lookup = refuse('dns.lookup');
dns.resolve = refuse('dns.resolve');
if (typeof globalThis.fetch === 'function') globalThis.fetch = refuse('fetch');
for (const name of ['spawn', 'spawnSync', 'execFile', 'execFileSync', 'exec', 'execSync', 'fork']) {
  const original = childProcess[name];
  childProcess[name] = function recorded(cmd, args) {
    report.spawned.push([cmd, ...(Array.isArray(args) ? args : [])].join(' '));
    return original.apply(this, arguments);
  };
}
process.on('exit', () => {
  if (process.env.SMOOTHCE_NO_NETWORK_REPORT) fs.writeFileSync(process.env.SMOOTHCE_NO_NETWORK_REPORT, JSON.stringify(report));
});
