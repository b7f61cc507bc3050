// Preloaded with `node -r test/helpers/peak-rss.cjs ...`: when the process exits, writes its
// peak resident memory (VmHWM from /proc/self/status, in bytes) to the file named by
// $SMOOTHCE_PEAK_RSS_FILE. Used to bound what a hostile input file costs the CLI.
'use strict';
const fs = require('node:fs');

const out = process.env.SMOOTHCE_PEAK_RSS_FILE;
if (out) {
  process.on('exit', () => {
    const m = /VmHWM:\s*(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    fs.writeFileSync(out, String(m ? Number(m[1]) * 1024 : 0));
  });
}
