/** Enclaves and backends a test file creates, destroyed after the file (so no TA process outlives it). */
import { afterAll } from 'vitest';
import { EmulatedBackend, type EmulatedEnclave } from '@enclave-edge/enclave';

export function trackedEnclaves(): {
  track: (e: EmulatedEnclave) => EmulatedEnclave;
  backendWith: (o?: ConstructorParameters<typeof EmulatedBackend>[0]) => EmulatedBackend;
} {
  const live: EmulatedEnclave[] = [];
  const backends: EmulatedBackend[] = [];
  afterAll(async () => {
    await Promise.all(live.map((e) => e.destroy()));
    await Promise.all(backends.map((b) => b.destroy()));
  });
  return {
    track: (e) => (live.push(e), e),
    backendWith: (o = {}) => {
      const b = new EmulatedBackend(o);
      backends.push(b);
      return b;
    },
  };
}
