/**
 * The caller of the confidential bench, in a process of its own: a back end does not share its
 * event loop with IoT Hub, so the client's crypto (including the encapsulation it prepares while
 * a call is on the wire) must not stall the simulator's forwarding of that same call. Plain and
 * confidential calls both go from here, alternating; the results go back over IPC.
 */
import { HubClient } from '@enclave-edge/hub-client';
import { ConfidentialClient, methodTransport } from '@enclave-edge/confidential';
import { measureLatency, measureRatioPaired } from '../lib.js';

export interface CallerConfig {
  serviceConnectionString: string;
  /** The simulator's TLS CA (service API). */
  ca: string;
  deviceId: string;
  /** The device CA the TA's evidence chains to. */
  trustAnchor: string;
}

const cfg = JSON.parse(process.env.BENCH_CONFIDENTIAL_CALLER ?? 'null') as CallerConfig | null;
if (!cfg || !process.send) throw new Error('confidential-caller.ts runs as a child of confidential.bench.ts');

const hub = HubClient.fromConnectionString(cfg.serviceConnectionString, { ca: cfg.ca });
const invoke = (method: string, payload: unknown) =>
  hub.invokeModuleMethod(cfg.deviceId, 'host-module', { methodName: method, payload, responseTimeoutInSeconds: 15 }) as Promise<{ status: number; payload: any }>;
const client = new ConfidentialClient({ transport: methodTransport(invoke), trustAnchors: cfg.trustAnchor, allowEmulated: true });
const params = (i: number) => ({ n: i, text: 'reading', values: [1.5, 2.5, 3.5] });

const pair = await measureRatioPaired(
  {
    label: 'invokeTA hello.echo confidential (key cached)',
    fn: async (i) => {
      const r = (await client.invoke('hello', 'echo', params(i))) as { n?: number };
      if (r?.n !== i) throw new Error('confidential echo answered something else');
    },
  },
  {
    label: 'invokeTA hello.echo plain',
    fn: async (i) => {
      const r = await invoke('invokeTA', { ta: 'hello', command: 'echo', params: params(i) });
      if (r.status !== 200) throw new Error(`plain invokeTA answered ${r.status}`);
    },
  },
  { rounds: 5, iterations: 200, warmup: 50 },
);
const evidence = await measureLatency('evidence fetch + verify (attest method, ES256 + chain, no cache)', async () => {
  client.forget('hello');
  await client.attestedKey('hello');
}, { iterations: 100, warmup: 10 });
hub.close();
process.send({ ...pair, evidence }, () => process.exit(0));
