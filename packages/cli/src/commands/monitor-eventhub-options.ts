/** `monitor --eventhub` options, parsed without loading the Event Hubs client (help, usage errors). */
import { EnclaveEdgeError } from '@enclave-edge/errors';

export type StartFrom = 'earliest' | 'latest' | Date;

/** Where `--from` starts: `earliest`, `latest` or an ISO 8601 enqueued time. */
export function parseFrom(v: string): StartFrom {
  if (v === 'earliest' || v === 'latest') return v;
  // A date alone or a date and time; Date.parse alone would take "1" or "March 7".
  const t = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2}))?$/.test(v) ? Date.parse(v) : NaN;
  if (Number.isNaN(t)) throw new EnclaveEdgeError('BAD_PARAMETERS', `--from must be earliest, latest or an ISO 8601 time such as 2026-12-04T01:00:00Z, got ${JSON.stringify(v)}`);
  return new Date(t);
}

/** Event Hubs consumer group names: letters, digits, `.`, `_`, `-` (and `$Default`), at most 50. */
export function parseConsumerGroup(v: string): string {
  if (!/^(?:\$Default|[A-Za-z0-9][A-Za-z0-9._-]{0,49})$/.test(v)) {
    throw new EnclaveEdgeError('BAD_PARAMETERS', `not a consumer group name: ${JSON.stringify(v)} (letters, digits, '.', '_', '-', at most 50; or $Default)`);
  }
  return v;
}
