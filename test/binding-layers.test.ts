/**
 * The layers of binding/ (docs/architecture.md, "binding/"), read from the sources' own
 * `#include "..."` lines (test/architecture.test.ts checks that they make no circle): every include
 * is a path relative to binding/ that exists; aten/ and kernels/ never reach N-API (napi.h, napi/, errors.h, the result registry),
 * directly or through a header; only addon.cc and errors.h sit at binding/'s top level; and
 * nothing outside testing/ includes testing/ but addon.cc, under SMOOTHCE_TESTING (the hooks stay
 * out of the shipped addon; test/addon-exports.test.ts checks the built addons' exports).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '..', 'binding');

function sources(): string[] {
  return fs
    .readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && /\.(cc|h|inc)$/.test(e.name))
    .map((e) => path.relative(root, path.join(e.parentPath ?? e.path, e.name)).split(path.sep).join('/'))
    .sort();
}

/** file -> the binding files it includes (quoted includes) and whether it includes <napi.h>. */
function includeGraph(): Map<string, { local: string[]; napi: boolean }> {
  const graph = new Map<string, { local: string[]; napi: boolean }>();
  for (const f of sources()) {
    const text = fs.readFileSync(path.join(root, f), 'utf8');
    const local = [...text.matchAll(/^\s*#\s*include\s+"([^"]+)"/gm)].map((m) => m[1]);
    graph.set(f, { local, napi: /^\s*#\s*include\s+<napi\.h>/m.test(text) });
  }
  return graph;
}

/** Everything `file` reaches through its includes. */
function reach(graph: ReturnType<typeof includeGraph>, file: string): Set<string> {
  const seen = new Set<string>();
  const stack = [...(graph.get(file)?.local ?? [])];
  while (stack.length) {
    const f = stack.pop()!;
    if (seen.has(f)) continue;
    seen.add(f);
    stack.push(...(graph.get(f)?.local ?? []));
  }
  return seen;
}

describe('binding/ layers', () => {
  const graph = includeGraph();

  it('has the layer folders, and only addon.cc and errors.h at its top level', () => {
    const top = sources().filter((f) => !f.includes('/'));
    expect(top).toEqual(['addon.cc', 'errors.h']);
    const folders = new Set(sources().map((f) => f.split('/')[0]).filter((f) => !f.includes('.')));
    for (const layer of ['aten', 'kernels', 'memory', 'napi', 'testing']) expect(folders).toContain(layer);
  });

  it('every quoted include is a path relative to binding/ that exists', () => {
    const bad: string[] = [];
    for (const [f, { local }] of graph) for (const inc of local) if (!graph.has(inc)) bad.push(`${f}: "${inc}"`);
    expect(bad).toEqual([]);
  });

  it('aten/ and kernels/ never reach N-API, directly or through a header', () => {
    const marshalling = (f: string) => f.startsWith('napi/') || f.startsWith('testing/') || f === 'errors.h' || f === 'addon.cc' || f === 'memory/result_registry.h';
    const bad: string[] = [];
    for (const f of graph.keys()) {
      if (!/^(aten|kernels)\//.test(f)) continue;
      const reached = [f, ...reach(graph, f)];
      for (const r of reached) {
        if (graph.get(r)?.napi) bad.push(`${f} reaches <napi.h> (in ${r})`);
        if (marshalling(r)) bad.push(`${f} reaches ${r}`);
      }
    }
    expect(bad).toEqual([]);
    // The check itself sees the marshalling layer's napi.h includes (so it cannot pass vacuously).
    expect(graph.get('napi/tensor_view.h')?.napi).toBe(true);
  });

  it('only testing/ and addon.cc (under #ifdef SMOOTHCE_TESTING) include testing/ (the hooks are in the test addon alone)', () => {
    const bad = [...graph].filter(([f, { local }]) => !f.startsWith('testing/') && f !== 'addon.cc' && local.some((i) => i.startsWith('testing/')));
    expect(bad.map(([f]) => f)).toEqual([]);
    const addon = fs.readFileSync(path.join(root, 'addon.cc'), 'utf8');
    expect(addon).toMatch(/#ifdef SMOOTHCE_TESTING\s+#include "testing\/testing\.h"\s+#endif/);
    expect(addon).toMatch(/#ifdef SMOOTHCE_TESTING\s+(\/\/[^\n]*\s+)*InitTesting\(env, exports\);\s+#endif/);
  });
});
