/**
 * Docs that run: every fenced code block in README.md and docs/*.md is run (or checked) here,
 * so no example can rot. By the fence's language:
 *
 *   ```js / ```cjs  a CommonJS program, run with node from the repository root;
 *   ```mjs          an ES module, run the same way;
 *   ```ts           strict TypeScript: type-checked (tsc --strict, module nodenext, as an ES
 *                   module), then run (by vitest, with a bare config, when it imports 'vitest');
 *   ```sh           shell commands, each run from the repository root with bash (exit 0 within
 *                   60 s), except the few in NOT_RUN below, which are checked instead (the
 *                   script exists, and each --flag appears in its source);
 *   ```python       run with the oracle's /usr/bin/python3, in a temporary folder, with python/
 *                   on PYTHONPATH (as a project that copies python/smoothce_parity.py has it);
 *   ```json         parsed; a case file ("format": "smoothce-cases") must also validate
 *                   against the case-file schema;
 *   ```text         program output or a synopsis: not run.
 *
 * Any other fence language, or none, fails. Programs import the package by name ('smoothce'),
 * which resolves by package self-reference from the repository root (dist/ is built by
 * test/global-setup.ts); they are written to .docs-test/ (git-ignored) inside the repository.
 * A failure names the file, the line of the block and the heading it is under.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import ts from 'typescript';
import { parseCaseFile } from '../lib/parity/cases';
import { extractBlocks, LANGS, type Block } from './helpers/markdown';

const root = path.resolve(__dirname, '..');
const work = path.join(root, '.docs-test');
const TIMEOUT_MS = 60_000;

const where = (b: Block): string => `${b.file}:${b.line} (block #${b.index}, \`\`\`${b.lang || '(none)'}, under "${b.heading}")`;

function docFiles(): string[] {
  const docs = fs
    .readdirSync(path.join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => path.join('docs', f));
  return ['README.md', ...docs];
}

const blocks: Block[] = docFiles().flatMap((f) => extractBlocks(f, fs.readFileSync(path.join(root, f), 'utf8')));

function report(b: Block, what: string, r: ReturnType<typeof spawnSync>): string {
  const tail = (s: unknown): string => String(s ?? '').trim().split('\n').slice(-25).join('\n');
  return `${where(b)}: ${what} ${r.error ? `failed to run (${r.error.message})` : r.signal ? `was killed (${r.signal}; over ${TIMEOUT_MS / 1000} s?)` : `exited with ${r.status}`}\n--- stdout\n${tail(r.stdout)}\n--- stderr\n${tail(r.stderr)}\n--- block\n${b.body}`;
}

function run(b: Block, command: string, args: string[], cwd = root, env: NodeJS.ProcessEnv = {}): void {
  const r = spawnSync(command, args, {
    cwd,
    encoding: 'utf8',
    timeout: TIMEOUT_MS,
    env: { ...process.env, NODE_OPTIONS: '', npm_config_offline: 'true', ...env },
  });
  if (r.status !== 0) throw new Error(report(b, `${command} ${args.join(' ')}`, r));
}

/** Name of the block's program file in .docs-test/. */
function fileFor(b: Block, ext: string): string {
  return path.join(work, `${b.file.replace(/[/.]/g, '_')}_L${b.line}${ext}`);
}

// ---- sh: what is run, and what is only checked --------------------------------------------

const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };

/**
 * Commands the test does not run, each with why. For these the test checks that the script
 * or file exists and that every --flag on the line appears in its source.
 */
const NOT_RUN: { pattern: RegExp; why: string }[] = [
  { pattern: /^bash scripts\/setup\.sh\b/, why: 'installs system packages and rebuilds everything' },
  { pattern: /^npm test\b/, why: 'the whole suite, which this test is part of' },
  { pattern: /^npm ci\b/, why: 'reinstalls node_modules under the running tests' },
  { pattern: /^npm run build:ts\b/, why: 'rewrites dist/ under the tests running in parallel (global-setup built it)' },
  { pattern: /^npm run (demo|bench|fuzz|soak)\b/, why: 'runs for minutes' },
  { pattern: /^bash scripts\/valgrind\.sh\b/, why: 'runs for minutes under valgrind' },
  { pattern: /^tar -cJf shared\/node\.tar\.xz\b/, why: 'packs the Node binary for a GPU machine (tens of MB)' },
];

/** The source file an npm script or a bash line runs (to look its flags up in). */
function sourceOf(command: string): string | null {
  const npmRun = /^npm run (\S+)/.exec(command);
  const npmBuiltin = /^npm (test|ci)\b/.exec(command);
  if (npmRun || npmBuiltin) {
    const name = npmRun ? npmRun[1] : npmBuiltin![1];
    if (name === 'ci') return 'package-lock.json';
    const script = pkg.scripts[name];
    if (script === undefined) throw new Error(`npm script '${name}' is not in package.json`);
    const files = script.match(/\S+\.(?:js|ts|sh|py)\b/g);
    return files ? files[files.length - 1] : null;
  }
  const bash = /^bash (\S+)/.exec(command);
  if (bash) return bash[1];
  return null;
}

function checkNotRun(b: Block, command: string): void {
  const src = sourceOf(command);
  if (src === null) return; // e.g. npm test: the script exists (sourceOf checked it)
  const file = path.join(root, src);
  expect(fs.existsSync(file), `${where(b)}: \`${command}\` needs ${src}, which does not exist`).toBe(true);
  // A CLI entry's subcommands live in the folder of the same name beside it (dist/cli.js, dist/cli/*.js).
  const sub = file.replace(/\.[a-z]+$/, '');
  const parts = [file, ...(fs.existsSync(sub) && fs.statSync(sub).isDirectory() ? fs.readdirSync(sub).filter((f) => /\.(js|ts)$/.test(f)).map((f) => path.join(sub, f)) : [])];
  const text = parts.map((f) => fs.readFileSync(f, 'utf8')).join('\n');
  for (const flag of command.match(/(?<=\s)--[a-z][a-z0-9-]*/g) ?? []) {
    // As written ('--seed'), or as a util.parseArgs option key (help: { type: 'boolean' }).
    const name = flag.slice(2);
    const known = text.includes(flag) || new RegExp(`(^|[\\s{,'"])${name.replace(/-/g, '\\-')}['"]?\\s*:`, 'm').test(text);
    expect(known, `${where(b)}: \`${command}\`: ${src} does not mention the flag ${flag}`).toBe(true);
  }
}

/** The block's commands: comment lines dropped, `\` continuations joined. */
function commands(body: string): string[] {
  const out: string[] = [];
  let current = '';
  for (const raw of body.split('\n')) {
    const line = raw.replace(/^\s+/, '');
    if (current === '' && (line === '' || line.startsWith('#'))) continue;
    if (line.endsWith('\\')) {
      current += line.slice(0, -1) + ' ';
      continue;
    }
    out.push((current + line).trim());
    current = '';
  }
  if (current) out.push(current.trim());
  return out;
}

function runShell(b: Block): void {
  for (const command of commands(b.body)) {
    // `a && b`: each part on its own, so a part that is only checked does not stop one that runs.
    const code = command.replace(/\s+#.*$/, '');
    for (const part of code.split(/\s*&&\s*/)) {
      if (NOT_RUN.some((n) => n.pattern.test(part))) checkNotRun(b, part);
      else run(b, 'bash', ['-eo', 'pipefail', '-c', part]);
    }
  }
}

// ---- ts: one strict type-check of all blocks, then each is run ------------------------------

let tsDiagnostics = new Map<string, string[]>();

function typecheck(files: string[]): Map<string, string[]> {
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    types: ['node'],
    skipLibCheck: true,
  };
  const program = ts.createProgram(files, options);
  const out = new Map<string, string[]>();
  for (const d of ts.getPreEmitDiagnostics(program)) {
    const file = d.file?.fileName ?? '(global)';
    const pos = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start) : null;
    const text = `${pos ? `line ${pos.line + 1} of the block: ` : ''}${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
    out.set(path.resolve(file), [...(out.get(path.resolve(file)) ?? []), text]);
  }
  return out;
}

beforeAll(() => {
  fs.rmSync(work, { recursive: true, force: true });
  fs.mkdirSync(work, { recursive: true });
  const tsBlocks = blocks.filter((b) => b.lang === 'ts');
  const files = tsBlocks.map((b) => {
    const f = fileFor(b, '.mts');
    fs.writeFileSync(f, b.body);
    return f;
  });
  tsDiagnostics = files.length ? typecheck(files) : new Map();
}, 120_000);

afterAll(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

function runBlock(b: Block): void {
  switch (b.lang) {
    case 'js':
    case 'cjs': {
      const f = fileFor(b, '.cjs');
      fs.writeFileSync(f, b.body);
      run(b, process.execPath, [f]);
      return;
    }
    case 'mjs': {
      const f = fileFor(b, '.mjs');
      fs.writeFileSync(f, b.body);
      run(b, process.execPath, [f]);
      return;
    }
    case 'ts': {
      const src = fileFor(b, '.mts');
      const problems = tsDiagnostics.get(path.resolve(src)) ?? [];
      if (problems.length) throw new Error(`${where(b)}: does not type-check (strict):\n${problems.join('\n')}\n--- block\n${b.body}`);
      const js = ts.transpileModule(b.body, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
      if (/from 'vitest'/.test(b.body)) {
        // A test file for the reader's own suite: run by vitest (with a bare config, not this repository's).
        // In a consumer project smoothce sits in node_modules, which vitest leaves to Node; here it
        // resolves by self-reference to dist/, which vitest would transform: keep dist/ external too.
        const f = fileFor(b, '.test.mjs');
        fs.writeFileSync(f, js);
        const config = path.join(work, 'vitest.config.mjs');
        fs.writeFileSync(config, "export default { test: { include: ['*.test.mjs'], server: { deps: { external: [/\\/dist\\//] } } } };\n");
        run(b, process.execPath, [path.join(root, 'node_modules', 'vitest', 'vitest.mjs'), 'run', '--config', config, '--root', work, path.basename(f)]);
        return;
      }
      const f = fileFor(b, '.mjs');
      fs.writeFileSync(f, js);
      run(b, process.execPath, [f]);
      return;
    }
    case 'sh':
      runShell(b);
      return;
    case 'python': {
      const dir = fs.mkdtempSync(path.join(work, 'py-'));
      const f = path.join(dir, 'block.py');
      fs.writeFileSync(f, b.body);
      run(b, '/usr/bin/python3', [f], dir, { PYTHONPATH: path.join(root, 'python') });
      return;
    }
    case 'json': {
      let value: unknown;
      try {
        value = JSON.parse(b.body);
      } catch (err) {
        throw new Error(`${where(b)}: not valid JSON: ${(err as Error).message}\n--- block\n${b.body}`);
      }
      if (value && typeof value === 'object' && (value as { format?: unknown }).format === 'smoothce-cases') {
        try {
          parseCaseFile(value, { file: where(b) });
        } catch (err) {
          throw new Error(`${where(b)}: not a valid case file: ${(err as Error).message}`);
        }
      }
      return;
    }
    case 'text':
      return;
    default:
      throw new Error(`${where(b)}: fence language '${b.lang}' is not one of ${[...LANGS].join(', ')} (a block without one is not allowed either)`);
  }
}

describe('docs: every code block runs', () => {
  it('finds the blocks (README.md and docs/*.md)', () => {
    expect(blocks.filter((b) => b.file === 'README.md').length).toBeGreaterThan(5);
    expect(new Set(blocks.map((b) => b.file)).size).toBeGreaterThan(5);
  });

  it('every block has a known fence language', () => {
    const bad = blocks.filter((b) => !LANGS.has(b.lang)).map(where);
    expect(bad, `blocks with an unknown or missing fence language (use one of ${[...LANGS].join(', ')})`).toEqual([]);
  });

  it.each(blocks.filter((b) => b.lang !== 'text').map((b) => [`${b.file}:${b.line} ${b.lang} (${b.heading})`, b] as const))(
    '%s',
    (_name, b) => {
      runBlock(b);
    },
    180_000,
  );
});

describe('docs test: it can fail', () => {
  it('a block without a language, or with an unknown one, fails with its file and line', () => {
    const [none, other] = extractBlocks('x.md', '# T\n\n```\nfoo\n```\n\n## U\n```rust\nfn main() {}\n```\n');
    expect(() => runBlock(none)).toThrow(/x\.md:3 \(block #1, ```\(none\), under "T"\): fence language '' is not one of/);
    expect(() => runBlock(other)).toThrow(/x\.md:8 \(block #2, ```rust, under "U"\)/);
  });

  it('a program that throws fails, naming the block', () => {
    const [b] = extractBlocks('y.md', '## Broken\n\n```js\nrequire("smoothce").crossEntropy(1, 2);\n```\n');
    expect(() => runBlock(b)).toThrow(/y\.md:3 \(block #1, ```js, under "Broken"\): .*exited with 1[\s\S]*ERR_SMOOTHCE_INVALID_ARG_TYPE/);
  });

  it('a ts block that does not type-check strictly fails, even though it would run', () => {
    const f = path.join(work, 'strict-probe.mts');
    fs.writeFileSync(f, "import { calibration } from 'smoothce';\nfunction f(x) { return x; }\nconsole.log(f(1), typeof calibration);\n");
    const d = typecheck([f]).get(path.resolve(f)) ?? [];
    expect(d.join('\n')).toMatch(/implicitly has an 'any' type/);
  });

  it('a sh command that is only checked must name a script and flags that exist', () => {
    const [b] = extractBlocks('z.md', '```sh\nnpm run fuzz -- --no-such-flag\n```\n');
    expect(() => runBlock(b)).toThrow(/does not mention the flag --no-such-flag/);
    const [c] = extractBlocks('z.md', '```sh\nnpm run no-such-script\n```\n');
    expect(() => runBlock(c)).toThrow(/exited with/);
  });
});
