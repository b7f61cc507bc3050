import { afterAll } from 'vitest';

/** Puts process.env[name] back as it was once the file's tests are done (they set it per test). */
export function restoreEnvAfterAll(name: string): void {
  const saved = process.env[name];
  afterAll(() => {
    if (saved === undefined) delete process.env[name];
    else process.env[name] = saved;
  });
}
