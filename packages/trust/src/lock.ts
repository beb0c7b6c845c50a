/** A lock file (O_EXCL) so two processes starting at once do not both create keys. */
import { open, stat, unlink, mkdir } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { dirname } from 'node:path';
import { EnclaveEdgeError } from '@enclave-edge/errors';

export async function withLockFile<T>(path: string, fn: () => Promise<T>, opts: { staleMs?: number; waitMs?: number } = {}): Promise<T> {
  const staleMs = opts.staleMs ?? 30_000;
  const deadline = Date.now() + (opts.waitMs ?? 60_000);
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  for (;;) {
    try {
      await (await open(path, 'wx', 0o600)).close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const st = await stat(path).catch(() => undefined);
      // A holder that died leaves the file behind: take it over once it is old.
      if (st && Date.now() - st.mtimeMs > staleMs) {
        await unlink(path).catch(() => undefined);
        continue;
      }
      if (Date.now() > deadline) throw new EnclaveEdgeError('BUSY', `another process holds ${path}; remove it if no enclave-edge process is starting`);
      await sleep(50 + Math.floor(Math.random() * 50));
    }
  }
  try {
    return await fn();
  } finally {
    await unlink(path).catch(() => undefined);
  }
}
