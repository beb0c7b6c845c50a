import { afterEach, describe, expect, it } from 'vitest';
import { createLogger, escapeLogText, setLogLevel, createMetrics, startMetricsServer, IntervalStats, normalizeLevel, defaultMetricsPort, type MetricsServer } from '@enclave-edge/observability';

function capture() {
  const lines: string[] = [];
  return { lines, destination: { write: (l: string) => lines.push(l) } };
}

describe('logger', () => {
  it('prefixes each line with the syslog severity and a timestamp', () => {
    const { lines, destination } = capture();
    const log = createLogger({ name: 'ta-runtime', level: 'debug', destination });
    log.info({ ta: 'hello' }, 'loaded');
    log.warn('slow');
    log.error('broken');
    log.debug('detail');
    expect(lines[0]).toMatch(/^<6> \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \+00:00 \[INF\] - ta-runtime: loaded \{"ta":"hello"\}\n$/);
    expect(lines[1]).toMatch(/^<4> .* \[WRN\] - ta-runtime: slow\n$/);
    expect(lines[2]).toMatch(/^<3> /);
    expect(lines[3]).toMatch(/^<7> /);
  });
  it('takes its level from RuntimeLogLevel and from a desired property', () => {
    const { lines, destination } = capture();
    const log = createLogger({ name: 'm', destination, env: { RuntimeLogLevel: 'Warning' } });
    log.info('hidden');
    log.warn('shown');
    expect(lines).toHaveLength(1);
    expect(setLogLevel(log, 'debug')).toBe(true);
    expect(setLogLevel(log, 'loud')).toBe(false);
    log.debug('now shown');
    expect(lines).toHaveLength(2);
    expect(normalizeLevel('INFORMATION')).toBe('info');
  });
  it('redacts secret-looking fields at any depth', () => {
    const { lines, destination } = capture();
    const log = createLogger({ name: 'm', destination });
    log.info({ connectionString: 'HostName=x;SharedAccessKey=abc', nested: { privateKey: 'PEM', sealKey: 'k', ok: 'visible' }, key: new Uint8Array(32) }, 'cfg');
    const text = lines.join('');
    expect(text).not.toContain('SharedAccessKey=abc');
    expect(text).not.toContain('PEM');
    expect(text).toContain('visible');
    expect(text).toContain('[redacted]');
  });
  it('escapes control characters in the message, the name and the fields: one record is one line', () => {
    const { lines, destination } = capture();
    const forged = 'ok\n<3> 2026-01-01 00:00:00.000 +00:00 [ERR] - ta-runtime: TA loaded {"ta":"billing"}';
    const log = createLogger({ name: 'ta-runtime\r\n<2> fake', destination });
    log.warn({ ta: 'x', note: 'a\u2028b\u001b[2Jc' }, forged);
    log.info('tab\there \u0085 \u202e \u007f');
    expect(lines).toHaveLength(2);
    for (const l of lines) expect(l.slice(0, -1)).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e]/);
    expect(lines[0]).toMatch(/^<4> .* \[WRN\] - ta-runtime\\r\\n<2> fake: ok\\n<3> 2026/);
    expect(JSON.parse(lines[0]!.slice(lines[0]!.lastIndexOf(' {"'))).note).toBe('a\u2028b\u001b[2Jc'); // fields stay valid JSON
    expect(lines[1]).toContain('tab\\there \\u0085 \\u202e \\u007f');
    expect(escapeLogText('plain text, ünïcödé, emoji 🙂')).toBe('plain text, ünïcödé, emoji 🙂');
  });
});

describe('metrics', () => {
  let server: MetricsServer | undefined;
  afterEach(async () => server?.close());

  it('serves /metrics with invocation counters and latency histograms', async () => {
    const m = createMetrics({ module: 'test', defaultMetrics: false, env: {} });
    m.invocations.inc({ ta: 'hello', command: 'ping' });
    m.latency.observe({ ta: 'hello', command: 'ping' }, 0.002);
    m.liveEnclaves.set(3);
    server = await startMetricsServer({ registry: m.registry, port: 0, host: '127.0.0.1' });
    const res = await fetch(server.url);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toMatch(/enclave_edge_ta_invocations_total\{ta="hello",command="ping",module_name="test",instance_number="[0-9a-f-]{36}"\} 1/);
    expect(text).toMatch(/enclave_edge_live_enclaves\{module_name="test",instance_number="[0-9a-f-]{36}"\} 3/);
    expect(text).toContain('enclave_edge_ta_latency_seconds_bucket');
    expect((await fetch(server.url.replace('/metrics', '/other'))).status).toBe(404);
  });
  it("carries IoT Edge's label set: iothub, edge_device, instance_number, module_name", async () => {
    const m = createMetrics({ module: 'ta-runtime', defaultMetrics: false, env: { IOTEDGE_IOTHUBHOSTNAME: 'hub.azure-devices.net', IOTEDGE_DEVICEID: 'dev-7' } });
    m.messages.inc({ input: 'in', output: '' });
    const text = await m.registry.metrics();
    expect(text).toMatch(/enclave_edge_messages_total\{input="in",output="",module_name="ta-runtime",iothub="hub\.azure-devices\.net",edge_device="dev-7",instance_number="[0-9a-f-]{36}"\} 1/);
  });
  it('answers /health 503 until the module says it is ready, then 200 (the images\' HEALTHCHECK)', async () => {
    const m = createMetrics({ module: 'test', defaultMetrics: false });
    let ready = false;
    server = await startMetricsServer({ registry: m.registry, port: 0, host: '127.0.0.1', health: () => ready });
    const health = server.url.replace('/metrics', '/health');
    expect((await fetch(health)).status).toBe(503);
    ready = true;
    const res = await fetch(health);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('ready\n');
    expect((await fetch(health, { method: 'POST' })).status).toBe(404);
  });
  it('refuses an invalid port clearly', async () => {
    const m = createMetrics({ module: 'test', defaultMetrics: false });
    await expect(startMetricsServer({ registry: m.registry, port: 70000 })).rejects.toThrow(/not a valid port/);
  });
});

describe('interval stats', () => {
  it('aggregates count, errors and percentiles per TA and command, then resets', () => {
    const s = new IntervalStats();
    for (let i = 1; i <= 100; i++) s.record('hello', 'ping', i, i % 10 !== 0);
    s.record('kv', 'get', 5, true);
    const { stats } = s.drain();
    const ping = stats.find((r) => r.command === 'ping')!;
    expect(ping).toMatchObject({ ta: 'hello', count: 100, errors: 10, p50Ms: 50, p95Ms: 95 });
    expect(stats).toHaveLength(2);
    expect(s.drain().stats).toHaveLength(0);
  });
});

describe('metrics port', () => {
  it('is 9600 on a device, a free port under the simulator, and METRICS_PORT when set', () => {
    expect(defaultMetricsPort({})).toBe(9600);
    expect(defaultMetricsPort({ EDGESIM_GATEWAY_HTTPS_PORT: '443' })).toBe(0);
    expect(defaultMetricsPort({ EDGESIM_GATEWAY_HTTPS_PORT: '443', METRICS_PORT: '9700' })).toBe(9700);
  });
});
