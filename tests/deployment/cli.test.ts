// The `deploy` command group through the real binary.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { loadValidators, repoRoot } from './schemas.js';

const run = promisify(execFile);
const bin = join(repoRoot, 'packages/cli/bin/enclave-edge.js');
const dir = mkdtempSync(join(tmpdir(), 'ee-deploy-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function cli(args: string[]) {
  try {
    const r = await run(process.execPath, [bin, ...args], { cwd: repoRoot });
    return { code: 0, ...r };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('enclave-edge deploy', () => {
  it('generate --platform arm32v7 --json writes a schema-valid deployment', async () => {
    const r = await cli(['deploy', 'generate', '--platform', 'arm32v7', '--out-dir', dir, '--allow-dev-signer', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.path).toBe(join(dir, 'deployment.arm32v7.json'));
    const { deployment, ajv } = loadValidators();
    const manifest = JSON.parse(readFileSync(out.path, 'utf8'));
    expect(deployment(manifest), ajv.errorsText(deployment.errors)).toBe(true);
    expect(manifest.modulesContent.$edgeAgent['properties.desired'].modules['host-module'].settings.image).toBe('localhost:5000/enclave-edge-host-module:0.1.0-arm32v7');
  });

  it('refuses an unknown platform, and applying a template, with one-line reasons', async () => {
    const bad = await cli(['deploy', 'generate', '--platform', 'riscv', '--out-dir', dir]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/BAD_PARAMETERS: unknown platform "riscv"/);
    const tpl = await cli(['deploy', 'apply', join(repoRoot, 'deployment.template.json')]);
    expect(tpl.code).not.toBe(0);
    expect(tpl.stderr).toMatch(/unresolved placeholders/);
    writeFileSync(join(dir, 'broken.json'), '{"modulesContent":');
    const broken = await cli(['deploy', 'at-scale', join(dir, 'broken.json'), '--id', 'x', '--target-condition', "tags.a='b'"]);
    expect(broken.stderr).toMatch(/BAD_FORMAT/);
  });
});
