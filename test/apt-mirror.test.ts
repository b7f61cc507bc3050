// scripts/apt-mirror.sh finds the Debian mirror for torch2.sh's debootstrap from whatever apt configuration a
// machine has: deb822 files only, one-line files only, both, or none. It must never end a `set -euo pipefail`
// caller (a missing /etc/apt/sources.list once made CI red on every machine without a cached chroot).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const SCRIPT = resolve(__dirname, '../scripts/apt-mirror.sh');
const root = mkdtempSync(join(tmpdir(), 'smoothce-apt-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let n = 0;
function etcApt(files: Record<string, string>): string {
  const dir = join(root, `apt${n++}`);
  mkdirSync(join(dir, 'sources.list.d'), { recursive: true });
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

/** The mirror, both as the script prints it and as a strict-mode caller that sources it gets it. */
function mirror(dir: string): string {
  const printed = execFileSync('bash', [SCRIPT, dir], { encoding: 'utf8' }).trim();
  const sourced = execFileSync(
    'bash',
    ['-c', 'set -euo pipefail; . "$1"; m=$(apt_mirror "$2"); echo "got $m"', 'x', SCRIPT, dir],
    { encoding: 'utf8' },
  ).trim();
  expect(sourced).toBe(`got ${printed}`);
  return printed;
}

const DEB822 = `Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://mirror.deb822.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.deb822.example/debian-security
Suites: bookworm-security
Components: main
`;
const ONE_LINE = `# a comment
deb-src http://src.example/debian bookworm main
deb [arch=amd64 signed-by=/usr/share/keyrings/x.gpg] http://mirror.list.example/debian/ bookworm main
deb http://security.debian.org/debian-security bookworm-security main
`;

describe('scripts/apt-mirror.sh', () => {
  it('reads deb822 .sources files when there is no sources.list', () => {
    expect(mirror(etcApt({ 'sources.list.d/debian.sources': DEB822 }))).toBe('http://mirror.deb822.example/debian');
  });

  it('reads one-line .list files, options and a trailing slash included, skipping deb-src and security', () => {
    expect(mirror(etcApt({ 'sources.list': ONE_LINE }))).toBe('http://mirror.list.example/debian');
    expect(mirror(etcApt({ 'sources.list.d/extra.list': ONE_LINE }))).toBe('http://mirror.list.example/debian');
  });

  it('with both, takes sources.list first, as apt reads it', () => {
    const dir = etcApt({ 'sources.list': ONE_LINE, 'sources.list.d/debian.sources': DEB822 });
    expect(mirror(dir)).toBe('http://mirror.list.example/debian');
  });

  it("falls back to Debian's default with no configuration at all, or no folder", () => {
    expect(mirror(etcApt({}))).toBe('http://deb.debian.org/debian');
    expect(mirror(join(root, 'does-not-exist'))).toBe('http://deb.debian.org/debian');
  });

  it('skips disabled stanzas, files apt would not read, and archives that cannot serve Debian', () => {
    const dir = etcApt({
      'sources.list.d/a-google.list.disabled-by-farm': 'deb http://packages.cloud.example/apt cloud-sdk main\n',
      'sources.list.d/b-nodesource.list': 'deb [signed-by=/k.gpg] https://deb.nodesource.example/node_20.x nodistro main\n',
      'sources.list.d/c-off.sources': 'Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\nEnabled: no\n',
      'sources.list.d/d-src.sources': 'Types: deb-src\nURIs: http://src-only.example/debian\nSuites: bookworm\n',
      'sources.list.d/e-ok.sources': 'types: deb deb-src\nuris:\n http://cont.example/debian\nSuites: bookworm\n',
    });
    expect(mirror(dir)).toBe('http://cont.example/debian');
  });

  it('keeps going on unreadable or binary files', () => {
    const dir = etcApt({ 'sources.list.d/broken.sources': '\u0000\u0001garbage: \n\n::::\n' });
    expect(mirror(dir)).toBe('http://deb.debian.org/debian');
  });
});
