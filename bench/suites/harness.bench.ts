// A self-check of the harness: hashing 64 KiB vs 4 KiB must come out slower, ratio > 1.
import { createHash, randomBytes } from 'node:crypto';
import { defineSuite, measureLatency } from '../lib.js';

export default defineSuite({
  name: 'harness',
  async run(ctx) {
    const small = randomBytes(4096);
    const big = randomBytes(65536);
    const baseline = await measureLatency('sha256 4 KiB', () => createHash('sha256').update(small).digest());
    const subject = await measureLatency('sha256 64 KiB', () => createHash('sha256').update(big).digest());
    ctx.compare({ name: 'sha256 size scaling', subject, baseline, targets: [{ description: '64 KiB slower than 4 KiB', pass: subject.p50Us > baseline.p50Us }] });
  },
});
