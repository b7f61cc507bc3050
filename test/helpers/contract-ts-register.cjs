// Lets a plain `node` process (a child process or a worker thread) require lib/*.ts
// directly: `node -r ./test/helpers/contract-ts-register.cjs -e "require('./lib/index')"`.
// Type-strips with TypeScript's transpileModule (no type check, no dist/ needed). The output
// is cached by content hash in the OS temp folder, so that TypeScript itself is loaded only
// when a file changed.
'use strict';
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const cacheDir = path.join(os.tmpdir(), `smoothce-ts-cache-${process.getuid ? process.getuid() : 'u'}`);
let ts;

function transpile(source, filename) {
  const key = crypto.createHash('sha256').update(filename).update('\0').update(source).digest('hex');
  const cached = path.join(cacheDir, `${key}.js`);
  try {
    return fs.readFileSync(cached, 'utf8');
  } catch {
    // not cached yet
  }
  ts ??= require('typescript');
  const { outputText } = ts.transpileModule(source, {
    fileName: filename,
    compilerOptions: {
      module: ts.ModuleKind.CommonJS,
      target: ts.ScriptTarget.ES2022,
      esModuleInterop: true,
      inlineSourceMap: true,
    },
  });
  try {
    fs.mkdirSync(cacheDir, { recursive: true });
    const tmp = `${cached}.${process.pid}.${Math.random().toString(36).slice(2)}`;
    fs.writeFileSync(tmp, outputText);
    fs.renameSync(tmp, cached); // atomic: concurrent readers never see a partial file
  } catch {
    // a read-only temp folder only costs speed
  }
  return outputText;
}

if (!require.extensions['.ts']) {
  require.extensions['.ts'] = function compileTs(module, filename) {
    module._compile(transpile(fs.readFileSync(filename, 'utf8'), filename), filename);
  };
}
