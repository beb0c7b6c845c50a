/**
 * A standby TA process taken at once: the runtime must lower its RLIMIT_AS only after the child
 * runs node. Before that the pid is still the prlimit wrapper, which has yet to set its own
 * limits; lowering the hard limit first made the wrapper's setrlimit fail (EPERM without
 * CAP_SYS_RESOURCE) and the process exit with code 1 before node started — seen in CI under load.
 * A prlimit shim on PATH makes the wrapper wait for a `--pid` call (up to a bound), so the old
 * order shows deterministically.
 */
import { describe, it, expect, afterAll } from 'vitest';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { retryUntil } from '../../../tests/support/eventually.js';

const real = (() => {
  try {
    return execFileSync('sh', ['-c', 'command -v prlimit'], { encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
})();
const dir = mkdtempSync(join(tmpdir(), 'ee-prlimit-shim-'));
const log = join(dir, 'order.log');
const mark = join(dir, 'pid-set');
writeFileSync(join(dir, 'prlimit'), `#!/bin/sh
case "$1" in
  --pid) "${real}" "$@"; rc=$?; echo pid-set >> "${log}"; : > "${mark}"; exit $rc ;;
esac
i=0
while [ ! -e "${mark}" ] && [ $i -lt 100 ]; do sleep 0.03; i=$((i+1)); done
echo exec >> "${log}"
exec "${real}" "$@"
`);
chmodSync(join(dir, 'prlimit'), 0o755);
// Before the enclave package first looks prlimit up (once per process).
process.env.PATH = `${dir}:${process.env.PATH}`;
const { TaProcess, probeOsLimits } = await import('@enclave-edge/enclave/internals');

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(!real || process.platform !== 'linux')('TA process address-space limit', () => {
  it('a standby assigned before it said hello gets its limit after the wrapper ran: node starts, soft = hard = the TA bound', async () => {
    expect(probeOsLimits().addressSpace).toMatchObject({ enforced: true, prlimit: join(dir, 'prlimit') });
    const GiB = 1024 ** 3;
    const p = new TaProcess({ addressSpace: 6 * GiB, resident: 2 * GiB, wasmTrapHandler: false }, true);
    p.assign('order-ta', { addressSpace: 5 * GiB, resident: 2 * GiB, wasmTrapHandler: false });
    try {
      await retryUntil(() => {
        if (!existsSync(mark)) throw new Error('no --pid call yet');
      }, 30_000, 20);
      expect(readFileSync(log, 'utf8').trim().split('\n')).toEqual(['exec', 'pid-set']);
      expect(p.isGone).toBe(false);
      const limits = readFileSync(`/proc/${p.pid}/limits`, 'utf8');
      expect(limits).toMatch(new RegExp(`Max address space\\s+${5 * GiB}\\s+${5 * GiB}\\s+bytes`));
    } finally {
      p.close();
    }
  });
});
