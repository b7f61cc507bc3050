/**
 * Fenced code blocks of a Markdown file: shared by the docs test (which runs every block) and the
 * runtimes test (which runs the README's JavaScript under Bun and Deno).
 */
export interface Block {
  file: string;
  /** 1-based line of the opening fence. */
  line: number;
  lang: string;
  body: string;
  heading: string;
  /** Position among the file's blocks, from 1. */
  index: number;
}

export const LANGS = new Set(['js', 'cjs', 'mjs', 'ts', 'sh', 'python', 'json', 'text']);

/** Every fenced block of a Markdown file (fences at the start of a line, ``` only). */
export function extractBlocks(file: string, text: string): Block[] {
  const lines = text.split('\n');
  const out: Block[] = [];
  let heading = '(top)';
  for (let i = 0; i < lines.length; i++) {
    const h = /^#{1,6}\s+(.*)$/.exec(lines[i]);
    if (h) heading = h[1].trim();
    const open = /^```(.*)$/.exec(lines[i]);
    if (!open) continue;
    const lang = open[1].trim();
    let j = i + 1;
    while (j < lines.length && !/^```\s*$/.test(lines[j])) j++;
    if (j >= lines.length) throw new Error(`${file}:${i + 1}: a code block that is never closed`);
    out.push({ file, line: i + 1, lang, body: lines.slice(i + 1, j).join('\n') + '\n', heading, index: out.length + 1 });
    i = j;
  }
  return out;
}

