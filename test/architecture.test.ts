/**
 * The layout rules of docs/architecture.md, read from the code's own imports:
 * - lib/ has no import circle (type-only imports count: they tie the modules as much);
 * - binding/ has no #include "..." circle;
 * - lib/'s top level holds only the entry points (at most 4 files);
 * - no TypeScript file in lib/ is over 500 lines.
 * Imports are read with the TypeScript parser, not with a regex.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '..');
const MAX_LINES = 500;
const MAX_TOP_LEVEL_FILES = 4;

/** Files allowed over MAX_LINES for now, each with the reason. Empty it, do not grow it. */
const LONG_FILE_ALLOW_LIST: ReadonlySet<string> = new Set<string>([]);

/** Import circles allowed for now, each as its sorted member list. Empty it, do not grow it. */
const CYCLE_ALLOW_LIST: ReadonlySet<string> = new Set<string>([]);

function walk(dir: string, keep: (f: string) => boolean): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p, keep));
    else if (keep(p)) out.push(p);
  }
  return out.sort();
}

const rel = (f: string): string => path.relative(root, f).split(path.sep).join('/');

/** Every module specifier a TypeScript file names: import/export ... from, import type,
 * import('...') (as a call or in a type), require('...'). */
function tsSpecifiers(fileName: string, text: string): string[] {
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const specs: string[] = [];
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      specs.push(node.moduleSpecifier.text);
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference) && ts.isStringLiteral(node.moduleReference.expression)) {
      specs.push(node.moduleReference.expression.text);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      specs.push(node.argument.literal.text);
    } else if (ts.isCallExpression(node) && node.arguments.length >= 1 && ts.isStringLiteralLike(node.arguments[0])) {
      const callee = node.expression;
      if (callee.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(callee) && callee.text === 'require')) specs.push(node.arguments[0].text);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return specs;
}

/** The lib/ file a relative specifier names, or undefined (a package, or a non-TS file). */
function resolveTs(from: string, spec: string): string | undefined {
  if (!spec.startsWith('.')) return undefined;
  const base = path.resolve(path.dirname(from), spec).replace(/\.(js|ts)$/, '');
  for (const c of [`${base}.ts`, path.join(base, 'index.ts')]) if (fs.existsSync(c)) return c;
  return undefined;
}

/** The header or source an #include "..." names: next to the includer first, then from binding/. */
function resolveInclude(from: string, spec: string, bindingRoot: string): string | undefined {
  for (const c of [path.resolve(path.dirname(from), spec), path.resolve(bindingRoot, spec)]) if (fs.existsSync(c)) return c;
  return undefined;
}

/** The circles of a directed graph: its strongly connected components with more than one
 * member, or one member that names itself (Tarjan's algorithm). */
function cycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const strong = (v: string): void => {
    idx.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        strong(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) out.push(scc.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!idx.has(v)) strong(v);
  return out;
}

function libGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const f of walk(path.join(root, 'lib'), (p) => p.endsWith('.ts'))) {
    const deps = tsSpecifiers(f, fs.readFileSync(f, 'utf8'))
      .map((s) => resolveTs(f, s))
      .filter((d): d is string => d !== undefined)
      .map(rel);
    graph.set(rel(f), [...new Set(deps)]);
  }
  return graph;
}

function bindingGraph(): Map<string, string[]> {
  const bindingRoot = path.join(root, 'binding');
  const graph = new Map<string, string[]>();
  for (const f of walk(bindingRoot, (p) => /\.(cc|cpp|h|hpp|inc|cu|cuh)$/.test(p))) {
    const text = fs.readFileSync(f, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
    const deps: string[] = [];
    for (const m of text.matchAll(/^\s*#\s*include\s*"([^"]+)"/gm)) {
      const d = resolveInclude(f, m[1], bindingRoot);
      if (d !== undefined) deps.push(rel(d));
    }
    graph.set(rel(f), [...new Set(deps)]);
  }
  return graph;
}

const lineCount = (text: string): number => text.split('\n').length - (text.endsWith('\n') ? 1 : 0);

describe('architecture', () => {
  it('the cycle finder finds circles and nothing else', () => {
    const g = new Map<string, string[]>([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a', 'd']],
      ['d', []],
      ['e', ['e']],
      ['f', ['d']],
    ]);
    expect(cycles(g)).toEqual([['a', 'b', 'c'], ['e']]);
    expect(cycles(new Map([['a', ['b']], ['b', []]]))).toEqual([]);
  });

  it('the import reader sees every kind of import, and no import in a string or comment', () => {
    const src = [
      "import { a } from './a';",
      "import type { B } from './b';",
      "export { c } from './c';",
      "export * as d from './d';",
      "const e = require('./e');",
      "type F = import('./f').F;",
      "void import('./g');",
      "// import { h } from './h';",
      "const s = \"import { i } from './i'\";",
    ].join('\n');
    expect(tsSpecifiers('x.ts', src)).toEqual(['./a', './b', './c', './d', './e', './f', './g']);
  });

  it('lib/ has no import circle', () => {
    const graph = libGraph();
    expect(graph.size).toBeGreaterThan(50);
    expect(graph.get('lib/index.ts')).toContain('lib/loss/cross-entropy.ts');
    const found = cycles(graph).map((c) => c.join(', '));
    expect(found.filter((c) => !CYCLE_ALLOW_LIST.has(c))).toEqual([]);
  });

  it('the cycle allow-list names only circles that still exist', () => {
    const found = new Set(cycles(libGraph()).map((c) => c.join(', ')));
    expect([...CYCLE_ALLOW_LIST].filter((c) => !found.has(c))).toEqual([]);
  });

  it('binding/ has no #include circle', () => {
    const graph = bindingGraph();
    expect(graph.size).toBeGreaterThan(10);
    expect([...graph.values()].some((deps) => deps.length > 0)).toBe(true);
    expect(cycles(graph)).toEqual([]);
  });

  it("lib/'s top level holds only the entry points", () => {
    const files = fs.readdirSync(path.join(root, 'lib'), { withFileTypes: true }).filter((e) => !e.isDirectory()).map((e) => e.name);
    expect(files).toEqual(expect.arrayContaining(['index.ts', 'tfjs.ts', 'cli.ts']));
    expect(files.length).toBeLessThanOrEqual(MAX_TOP_LEVEL_FILES);
  });

  it(`no TypeScript file in lib/ is over ${MAX_LINES} lines`, () => {
    const long = walk(path.join(root, 'lib'), (p) => p.endsWith('.ts'))
      .map((f) => [rel(f), lineCount(fs.readFileSync(f, 'utf8'))] as const)
      .filter(([, n]) => n > MAX_LINES);
    expect(long.filter(([f]) => !LONG_FILE_ALLOW_LIST.has(f))).toEqual([]);
    // An allowed file that got short leaves the list.
    const short = [...LONG_FILE_ALLOW_LIST].filter((f) => !long.some(([g]) => g === f));
    expect(short).toEqual([]);
  });
});
