import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { buildTA, newTA } from '@enclave-edge/ta-toolchain';
import { validateManifest } from '@enclave-edge/bundle';
import { repoRoot, tempDir } from './helpers.js';

const run = promisify(execFile);

describe('newTA scaffold', () => {
  it('generates a project that builds and whose generated test passes (run by vitest in a child process)', async () => {
    const t = tempDir();
    try {
      const r = newTA('my-first-ta', join(t.dir, 'my-first-ta'));
      expect(r.files).toEqual(expect.arrayContaining(['ta.json', 'src/index.ts', 'test/ta.test.ts', 'package.json']));
      const ta = JSON.parse(readFileSync(join(r.dir, 'ta.json'), 'utf8'));
      expect(ta.uuid).toBe(r.uuid);
      // `enclave-edge ta run` keeps development keys in .enclave-edge/: never committed.
      expect(readFileSync(join(r.dir, '.gitignore'), 'utf8').split('\n')).toEqual(expect.arrayContaining(['.enclave-edge/', '*.pem', 'dist/']));
      const built = await buildTA(r.dir);
      expect(validateManifest(built.manifest).name).toBe('my-first-ta');
      // What `npm install` would give the project: the SDK, toolchain and vitest resolvable from it.
      mkdirSync(join(r.dir, 'node_modules'));
      symlinkSync(join(repoRoot, 'node_modules', '@enclave-edge'), join(r.dir, 'node_modules', '@enclave-edge'));
      symlinkSync(join(repoRoot, 'node_modules', 'vitest'), join(r.dir, 'node_modules', 'vitest'));
      const { stdout } = await run(process.execPath, [join(repoRoot, 'node_modules', 'vitest', 'vitest.mjs'), 'run', '--root', r.dir, '--reporter', 'dot'], { cwd: r.dir, env: { ...process.env, CI: '1', NO_COLOR: '1' } });
      expect(stdout).toMatch(/Tests\s+3 passed/);
    } finally {
      t.cleanup();
    }
  });

  it('refuses a bad name and a non-empty directory', () => {
    const t = tempDir();
    try {
      expect(() => newTA('Bad Name', join(t.dir, 'x'))).toThrow(expect.objectContaining({ code: 'BAD_PARAMETERS' }));
      writeFileSync(join(t.dir, 'occupied'), 'x');
      expect(() => newTA('ok-name', t.dir)).toThrow(expect.objectContaining({ code: 'CONFLICT', message: expect.stringMatching(/not empty/) }));
    } finally {
      t.cleanup();
    }
  });
});
