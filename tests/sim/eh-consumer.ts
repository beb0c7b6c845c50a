/**
 * A back-end process running the unmodified @azure/event-hubs EventHubConsumerClient
 * (fixtures/clients/eh-consumer.mjs) against a simulator's Event Hub-compatible endpoint, driven over IPC.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { expect } from 'vitest';
import { here } from './helpers.js';

export interface ConsumerOptions {
  /** Client options as a back end passes them (JSON), e.g. `{ retryOptions: { maxRetries: 0 } }`. */
  client?: Record<string, unknown>;
  /** Dial AMQP over WebSockets with the `ws` package (`webSocketOptions: { webSocket: WebSocket }`). */
  webSockets?: boolean;
}

export class EhConsumer {
  private next = 1;
  private readonly waiting = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();
  /** Subscriptions whose every partition receiver has initialised. */
  readonly readySubs = new Set<number>();

  private constructor(readonly proc: ChildProcess) {}

  static start(cs: string, caCertPath: string, o: ConsumerOptions = {}): Promise<EhConsumer> {
    const proc = fork(join(here, 'fixtures', 'clients', 'eh-consumer.mjs'), [cs, JSON.stringify(o.client ?? {}), o.webSockets ? 'websockets' : 'tcp'], {
      env: { PATH: process.env.PATH ?? '', NODE_EXTRA_CA_CERTS: caCertPath },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const c = new EhConsumer(proc);
    return new Promise((resolve, reject) => {
      proc.once('exit', (code) => {
        reject(new Error(`consumer exited ${code}`));
        for (const w of c.waiting.values()) w.reject(new Error(`consumer exited ${code}`));
        c.waiting.clear();
      });
      proc.on('message', (m: any) => {
        if (m.ready && m.sub === undefined) return resolve(c);
        if (m.sub !== undefined) {
          if (m.ready) c.readySubs.add(m.sub);
          return;
        }
        const w = c.waiting.get(m.id);
        c.waiting.delete(m.id);
        if (m.ok) w?.resolve(m.value);
        else w?.reject(Object.assign(new Error(m.error.message), m.error));
      });
    });
  }

  ask(msg: Record<string, unknown>): { id: number; result: Promise<any> } {
    const id = this.next++;
    const result = new Promise((resolve, reject) => this.waiting.set(id, { resolve, reject }));
    this.proc.send({ id, ...msg });
    return { id, result };
  }

  kill(): void {
    this.proc.kill();
  }
}

/** IoT Hub's annotations on an event from a module (as the consumer reports them) and its enqueued time. */
export function expectIotHubAnnotations(e: any, deviceId: string, moduleId: string): void {
  expect(e.systemProperties).toMatchObject({
    'iothub-connection-device-id': deviceId,
    'iothub-connection-module-id': moduleId,
    'iothub-message-source': 'Telemetry',
    'iothub-enqueuedtime': expect.any(Number),
  });
  expect(Date.parse(e.enqueuedTimeUtc)).toBe(e.systemProperties['iothub-enqueuedtime']);
}
