import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildTA } from '@enclave-edge/ta-toolchain';
import { loadTAForTests } from '@enclave-edge/ta-toolchain/test-harness';
import { decodeBundle, verifyBundle, generateSigningKey, pemSigner } from '@enclave-edge/bundle';
import { copyExample, taJson, tempDir, writeFiles } from './helpers.js';

describe('buildTA (JavaScript TAs)', () => {
  it('writes dist/<name>.tab with defaults from ta.json filled in', async () => {
    const t = tempDir();
    try {
      writeFiles(t.dir, { 'ta.json': taJson(), 'src/index.ts': "import { defineTA } from '@enclave-edge/ta-sdk';\nexport default defineTA({ commands: { hi: () => 'there' } });\n" });
      const r = await buildTA(t.dir);
      expect(r.outFile).toBe(join(t.dir, 'dist', 'fixture.tab'));
      const s = decodeBundle(readFileSync(r.outFile!));
      expect(s.manifest).toMatchObject({ name: 'fixture', runtime: 'js', debug: false, hostCalls: [], limits: { heapMb: 64, maxConcurrency: 4 }, session: { singleInstance: true } });
      expect(s.signature).toBeUndefined();
      const ta = await loadTAForTests(readFileSync(r.outFile!));
      try {
        expect(await ta.invoke('hi')).toBe('there');
      } finally {
        await ta.destroy();
      }
    } finally {
      t.cleanup();
    }
  });

  it('is reproducible: same source → same bytes and measurement, wherever the project lives', async () => {
    const a = tempDir();
    const b = tempDir('ee-other-place-');
    try {
      const one = await buildTA(copyExample('sensor-signer', a.dir), { write: false });
      const two = await buildTA(join(a.dir, 'sensor-signer'), { write: false });
      const three = await buildTA(copyExample('sensor-signer', b.dir), { write: false });
      expect(Buffer.from(two.bundle).equals(Buffer.from(one.bundle))).toBe(true);
      expect(three.measurement).toBe(one.measurement);
      // and a one-character source change changes it
      const src = join(b.dir, 'sensor-signer', 'src', 'index.ts');
      writeFileSync(src, readFileSync(src, 'utf8').replace("'signing-key'", "'signing-key2'"));
      expect((await buildTA(join(b.dir, 'sensor-signer'), { write: false })).measurement).not.toBe(one.measurement);
    } finally {
      a.cleanup();
      b.cleanup();
    }
  });

  it('debug builds set debug and carry a source map; release builds carry none', async () => {
    const t = tempDir();
    try {
      const dir = copyExample('hello', t.dir);
      const rel = await buildTA(dir, { write: false });
      const key = generateSigningKey();
      const dbg = await buildTA(dir, { write: false, debug: true, signer: pemSigner(key.privateKeyPem) });
      expect(decodeBundle(rel.bundle).sourceMap).toBeUndefined();
      const v = verifyBundle(dbg.bundle, { trustedSigners: [key.signerId] });
      expect(v.manifest.debug).toBe(true);
      const map = JSON.parse(new TextDecoder().decode(v.sourceMap));
      expect(map.sources).toContain('../src/index.ts');
      expect(map.sourcesContent.join('')).toContain("ping: () => 'pong'");
      expect(dbg.measurement).not.toBe(rel.measurement);
    } finally {
      t.cleanup();
    }
  });

  it('refuses a Node built-in imported through a local file, naming the import chain', async () => {
    const t = tempDir();
    try {
      writeFiles(t.dir, {
        'ta.json': taJson(),
        'src/index.ts': "import { defineTA } from '@enclave-edge/ta-sdk';\nimport { read } from './util.js';\nexport default defineTA({ commands: { read } });\n",
        'src/util.ts': "import { readFileSync } from 'fs';\nexport const read = () => readFileSync('/etc/passwd', 'utf8');\n",
      });
      await expect(buildTA(t.dir, { write: false })).rejects.toMatchObject({
        code: 'POLICY_VIOLATION',
        message: expect.stringContaining('Node built-in "fs" (import chain: src/index.ts → src/util.ts → fs)'),
      });
      expect(existsSync(join(t.dir, 'dist'))).toBe(false);
    } finally {
      t.cleanup();
    }
  });

  it('refuses a package that imports a Node built-in (node: prefix and require)', async () => {
    const t = tempDir();
    try {
      writeFiles(t.dir, {
        'ta.json': taJson(),
        'src/index.ts': "import { defineTA } from '@enclave-edge/ta-sdk';\nimport leak from 'innocent-looking';\nexport default defineTA({ commands: { leak } });\n",
        'node_modules/innocent-looking/package.json': JSON.stringify({ name: 'innocent-looking', version: '1.0.0', main: 'index.js' }),
        'node_modules/innocent-looking/index.js': "const helper = require('./helper.js');\nmodule.exports = helper;\n",
        'node_modules/innocent-looking/helper.js': "const cp = require('node:child_process');\nmodule.exports = () => cp.execSync('id').toString();\n",
      });
      const err = (await buildTA(t.dir, { write: false }).then(() => ({ code: 'NO_ERROR', message: 'the build succeeded' }), (e: unknown) => e)) as { code: string; message: string };
      expect(err.code).toBe('POLICY_VIOLATION');
      expect(err.message).toContain('"node:child_process" (import chain: src/index.ts → node_modules/innocent-looking/index.js → node_modules/innocent-looking/helper.js → node:child_process)');
    } finally {
      t.cleanup();
    }
  });

  it('reports compile errors with file and line', async () => {
    const t = tempDir();
    try {
      writeFiles(t.dir, { 'ta.json': taJson(), 'src/index.ts': 'export default {{{;\n' });
      await expect(buildTA(t.dir, { write: false })).rejects.toMatchObject({ code: 'BAD_PARAMETERS', message: expect.stringMatching(/TA build failed: src\/index\.ts:1:\d+/) });
    } finally {
      t.cleanup();
    }
  });

  it('refuses a bad ta.json with the field and rule, and a missing one', async () => {
    const t = tempDir();
    try {
      writeFiles(t.dir, { 'ta.json': taJson({ limits: { heapMb: 100000 }, colour: 'blue' }), 'src/index.ts': '' });
      await expect(buildTA(t.dir)).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringMatching(/limits\.heapMb: must be ≤ 4096.*colour: unknown field|colour: unknown field.*limits\.heapMb: must be ≤ 4096/) });
      await expect(buildTA(join(t.dir, 'nowhere'))).rejects.toMatchObject({ code: 'ITEM_NOT_FOUND', message: expect.stringMatching(/no ta\.json/) });
    } finally {
      t.cleanup();
    }
  });

  it('the test harness refuses a script without a defineTA export', async () => {
    const t = tempDir();
    try {
      writeFiles(t.dir, { 'ta.json': taJson(), 'src/index.ts': 'export const x = 1;\n' });
      const { bundle } = await buildTA(t.dir, { write: false });
      await expect(loadTAForTests(bundle)).rejects.toThrow(/does not export defineTA/);
    } finally {
      t.cleanup();
    }
  });
});
