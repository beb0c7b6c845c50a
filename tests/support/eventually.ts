/** Retry `fn` until it stops throwing; after `timeoutMs`, rethrow its last error (it always runs at least once). */
export async function retryUntil<T>(fn: () => Promise<T> | T, timeoutMs: number, stepMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() >= deadline) throw err;
      await new Promise((r) => setTimeout(r, stepMs));
    }
  }
}
