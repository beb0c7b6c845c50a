/** The worker's side of TA logging: every line passes the instance's log budget before it is posted. */
import type { Value } from '@enclave-edge/ta-sdk';
import type { LogLevel } from '../../contract.js';
import type { FromWorker, HostPort } from '../wire/protocol.cjs';
import { checkBinaryMemory } from './memory-watch.cjs';
import { LogGate, WORKER_LOG_LIMITS, droppedSummary } from '../wire/log-limiter.cjs';

export class LogPoster {
  private readonly gate: LogGate;

  constructor(private readonly port: HostPort) {
    this.gate = new LogGate(WORKER_LOG_LIMITS, (n, b, l) => this.port.postMessage({ t: 'log', level: 'warn', message: droppedSummary(n, b, l) } satisfies FromWorker));
  }

  /** `bytes`: the message length plus the encoded size of the fields. */
  post(level: LogLevel, message: string, fields: Record<string, Value> | undefined, bytes: number): void {
    checkBinaryMemory();
    if (!this.gate.pass(bytes)) return;
    this.port.postMessage((fields ? { t: 'log', level, message, fields } : { t: 'log', level, message }) satisfies FromWorker);
  }
}
