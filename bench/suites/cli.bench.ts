// CLI start-up: whole `enclave-edge` processes beside a bare `node -e 0` started the same way.
// No issue sets a target; ours: a command costs at most 3x a bare Node start (it loads only its group).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createDevelopmentCa } from '@enclave-edge/attestation';
import { defineSuite, measureLatencyPaired } from '../lib.js';

const bin = fileURLToPath(new URL('../../packages/cli/bin/enclave-edge.js', import.meta.url));

export default defineSuite({
  name: 'cli',
  async run(ctx) {
    const dir = mkdtempSync(join(tmpdir(), 'ee-cli-bench-'));
    try {
      writeFileSync(join(dir, 'ca.pem'), (await createDevelopmentCa()).certPem);
      const run = (args: string[]) => () => spawnSync(process.execPath, args, { cwd: dir, stdio: 'ignore' });
      // Each command alternates with a bare node start, so both see the same load.
      const opts = { iterations: 15, warmup: 1 };
      let n = 0;
      const commands: Array<[string, string[]]> = [
        ['enclave-edge --help', ['--help']],
        ['enclave-edge ta keygen (PEM)', ['ta', 'keygen', '--out', 'k.pem', '--force']],
        ['enclave-edge verify (rejected token)', ['verify', 'a.b.c', '--trust', 'ca.pem']],
        ['enclave-edge sim status (no simulator)', ['sim', 'status']],
        ['enclave-edge invoke (no simulator)', ['invoke', 'm', 'ping']],
      ];
      for (const [label, args] of commands) {
        const { subject, baseline } = await measureLatencyPaired({ label, fn: run([bin, ...args]) }, { label: 'node -e 0', fn: run(['-e', '0']) }, opts);
        n++;
        ctx.compare({
          name: `start-up: ${label}`,
          subject,
          baseline,
          targets: [{ description: 'p50 <= 3x a bare node start (ours)', pass: subject.p50Us <= 3 * baseline.p50Us }],
        });
      }
      if (n === 0) throw new Error('no CLI command measured');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
});
