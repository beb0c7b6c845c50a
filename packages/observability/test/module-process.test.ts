import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createLogger, createMetrics, startMetricsEndpoint } from '@enclave-edge/observability';

const child = fileURLToPath(new URL('./fixtures/signal-child.mjs', import.meta.url));

function runUntilSignalled(signal: NodeJS.Signals): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [child], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => {
      out += d;
      if (out.includes('ready\n') && !p.killed) p.kill(signal);
    });
    p.on('error', reject);
    p.on('exit', (code) => resolve({ code, out }));
  });
}

describe('module process frame', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)('on %s runs the stop hook, then exits 0', async (signal) => {
    const { code, out } = await runUntilSignalled(signal);
    expect(out).toContain('stopped cleanly');
    expect(out).toMatch(new RegExp(`stopping \\{"signal":"${signal}"\\}`));
    expect(code).toBe(0);
  });

  it('a metrics port that is taken is a warning, not a failure', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    const lines: string[] = [];
    const log = createLogger({ name: 'm', level: 'info', destination: { write: (l: string) => lines.push(l) } });
    try {
      const server = await startMetricsEndpoint(log, { registry: createMetrics({ module: 'm' }).registry, port });
      expect(server).toBeUndefined();
      expect(lines.join('')).toMatch(/\[WRN\] - m: metrics endpoint not started .*EADDRINUSE/);
    } finally {
      blocker.close();
    }
  });
});
