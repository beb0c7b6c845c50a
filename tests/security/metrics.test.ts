/**
 * Metrics cardinality: callers choose TA and command names, so each new name must not become a
 * Prometheus series for ever (100k names cost ~140 MB and a 20 s scrape before the fix).
 */
import { describe, it, expect } from 'vitest';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import { createMetrics, IntervalStats, LabelCap, OTHER_LABEL } from '@enclave-edge/observability';
import { handleMethod, type MethodContext } from '@enclave-edge/host-module';
import { CallRecorder } from '@enclave-edge/module-frame';

describe('metric labels are bounded (fixed: H6 host-module / ta-runtime)', () => {
  it('LabelCap keeps known pairs and folds the rest into _other', () => {
    const cap = new LabelCap(3);
    expect(cap.labels('a', 'x')).toEqual({ ta: 'a', command: 'x' });
    cap.labels('a', 'y');
    cap.labels('b', 'x');
    expect(cap.labels('c', 'z')).toEqual({ ta: OTHER_LABEL, command: OTHER_LABEL });
    expect(cap.labels('a', 'y')).toEqual({ ta: 'a', command: 'y' });
  });

  it('5000 invokeTA calls with made-up TA and command names create a bounded number of series', async () => {
    const metrics = createMetrics({ module: 'host-module', defaultMetrics: false });
    const recorder = new CallRecorder(metrics, new IntervalStats());
    const ctx: MethodContext = {
      ta: { invokeJson: async (ta: string) => { throw new EnclaveEdgeError('ITEM_NOT_FOUND', `no TA "${ta}" is loaded`); } } as never,
      defaultTimeoutMs: () => 1000,
      recorder,
      health: async () => ({}),
    };
    for (let i = 0; i < 5000; i++) {
      const r = await handleMethod('invokeTA', { ta: `ta-${i}`, command: `cmd${i}` }, ctx);
      expect(r.status).toBe(404);
    }
    const series = (await metrics.invocations.get()).values.length;
    expect(series).toBeLessThanOrEqual(1001);
    expect(series).toBeGreaterThan(1);
  });
});
