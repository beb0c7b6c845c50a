// CLI start-up: whole `enclave-edge` processes beside a bare `node -e 0` started the same way.
// No issue sets a target; ours: a command costs at most 3x a bare Node start (it loads only its group).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createDevelopmentCa } from '@enclave-edge/attestation';
import { defineSuite, measureLatency } from '../lib.js';

const bin = fileURLToPath(new URL('../../packages/cli/bin/enclave-edge.js', import.meta.url));

export default defineSuite({
  name: 'cli',
  async run(ctx) {
    const dir = mkdtempSync(join(tmpdir(), 'ee-cli-bench-'));
    try {
      writeFileSync(join(dir, 'ca.pem'), (await createDevelopmentCa()).certPem);
      const run = (args: string[]) => () => spawnSync(process.execPath, args, { cwd: dir, stdio: 'ignore' });
      const opts = { iterations: 10, warmup: 1 };
      const baseline = await measureLatency('node -e 0', run(['-e', '0']), opts);
      let n = 0;
      const commands: Array<[string, string[]]> = [
        ['enclave-edge --help', ['--help']],
        ['enclave-edge ta keygen (PEM)', ['ta', 'keygen', '--out', 'k.pem', '--force']],
        ['enclave-edge verify (rejected token)', ['verify', 'a.b.c', '--trust', 'ca.pem']],
        ['enclave-edge sim status (no simulator)', ['sim', 'status']],
        ['enclave-edge invoke (no simulator)', ['invoke', 'm', 'ping']],
      ];
      for (const [label, args] of commands) {
        const subject = await measureLatency(label, run([bin, ...args]), opts);
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
