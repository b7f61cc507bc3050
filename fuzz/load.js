'use strict';
// Loads smoothce for the fuzzer, the soak script and child-process tests: from lib/*.ts
// (type-stripped on the fly with TypeScript's transpileModule, no build needed) or from
// the built dist/. Returns { api, native } (native: the binding lib/core/native.ts loads).
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');

function registerTs() {
  if (require.extensions['.ts']) return;
  const ts = require('typescript');
  require.extensions['.ts'] = function compileTs(module, filename) {
    const { outputText } = ts.transpileModule(fs.readFileSync(filename, 'utf8'), {
      fileName: filename,
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
    });
    module._compile(outputText, filename);
  };
}

function load(from = 'lib') {
  if (from === 'dist') {
    return { api: require(path.join(root, 'dist', 'index.js')), native: require(path.join(root, 'dist', 'core', 'native.js')).native() };
  }
  registerTs();
  return { api: require(path.join(root, 'lib', 'index.ts')), native: require(path.join(root, 'lib', 'core', 'native.ts')).native() };
}

module.exports = { load, root };
