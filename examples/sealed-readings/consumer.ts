/**
 * The opening side of sealed readings: a back end that reads `$upstream` through the Event
 * Hub-compatible endpoint with the unmodified @azure/event-hubs client, opens each reading
 * sealed to its key and checks sensor-signer's signature over it and its header.
 *
 *   npx tsx examples/sealed-readings/consumer.ts --key recipient.pem --signer signer.jwk \
 *     [--connection-string "Endpoint=sb://…;EntityPath=…"] [--from earliest|latest] [--count N]
 *
 * The connection string may come from EVENTHUB_CONNECTION_STRING instead. Prints one JSON line
 * per sealed reading: { ok: true, pipeline, stream, seq, reading } or { ok: false, reason, error }.
 * A repeated (stream, seq) is refused as a replay; other events are skipped.
 */
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { EventHubConsumerClient, earliestEventPosition, latestEventPosition } from '@azure/event-hubs';
import { SealedReadingError, openSealedReading, type OpenedReading, type OpenSealedReadingOptions } from '@enclave-edge/confidential';

export interface ReadingOutcome {
  ok: boolean;
  pipeline?: string;
  stream?: string;
  seq?: number;
  reading?: unknown;
  reason?: string;
  error?: string;
}

/** Opens sealed readings and remembers the last sequence number of each stream (replays refused). */
export class SealedReadingOpener {
  private readonly last = new Map<string, number>();
  constructor(private readonly o: OpenSealedReadingOptions) {}

  /** undefined: not a sealed reading (other telemetry on the same hub). */
  async open(raw: unknown): Promise<ReadingOutcome | undefined> {
    let body = raw;
    if (raw instanceof Uint8Array) {
      try {
        body = JSON.parse(Buffer.from(raw).toString('utf8'));
      } catch {
        return undefined;
      }
    }
    if (!body || typeof body !== 'object' || !('ct' in body) || !('enc' in body)) return undefined;
    let r: OpenedReading;
    try {
      r = await openSealedReading(body, this.o);
    } catch (err) {
      const e = err as SealedReadingError;
      return { ok: false, reason: e.reason ?? 'malformed', error: e.message };
    }
    const { stream, seq, pipeline } = r.header;
    const before = this.last.get(stream);
    if (before !== undefined && seq <= before) return { ok: false, reason: 'replay', error: `sealed reading refused (replay): stream ${stream} seq ${seq} after ${before}`, pipeline, stream, seq };
    this.last.set(stream, seq);
    return { ok: true, pipeline, stream, seq, reading: r.reading };
  }
}

/** The recipient's private key from a file: a PEM (openssl genpkey -algorithm X25519) or an X25519 private JWK. */
export function recipientPrivateKey(text: string): Uint8Array {
  const key = text.trimStart().startsWith('-----BEGIN') ? createPrivateKey(text) : createPrivateKey({ key: JSON.parse(text), format: 'jwk' });
  if (key.asymmetricKeyType !== 'x25519') throw new Error('--key must be an X25519 private key (PEM or JWK)');
  return new Uint8Array(Buffer.from(key.export({ format: 'jwk' }).d!, 'base64url'));
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      key: { type: 'string' },
      signer: { type: 'string' },
      'connection-string': { type: 'string' },
      from: { type: 'string', default: 'latest' },
      count: { type: 'string' },
      group: { type: 'string', default: '$Default' },
    },
  });
  const cs = values['connection-string'] ?? process.env.EVENTHUB_CONNECTION_STRING;
  if (!values.key || !values.signer || !cs) {
    process.stderr.write('usage: consumer.ts --key <recipient private JWK file> --signer <sensor-signer public JWK file> [--connection-string <cs> | EVENTHUB_CONNECTION_STRING] [--from earliest|latest] [--count N]\n');
    process.exit(2);
  }
  const opener = new SealedReadingOpener({ privateKey: recipientPrivateKey(readFileSync(values.key, 'utf8')), signer: JSON.parse(readFileSync(values.signer, 'utf8')), expect: { ta: 'sensor-signer' } });
  const limit = values.count === undefined ? Infinity : Number(values.count);
  let opened = 0;
  const client = new EventHubConsumerClient(values.group!, cs);
  const done = new Promise<void>((resolve, reject) => {
    const sub = client.subscribe(
      {
        processEvents: async (events) => {
          for (const e of events) {
            const outcome = await opener.open(e.body);
            if (!outcome) continue;
            process.stdout.write(`${JSON.stringify(outcome)}\n`);
            if (outcome.ok && ++opened >= limit) {
              await sub.close();
              resolve();
              return;
            }
          }
        },
        processError: async (err) => {
          process.stderr.write(`event hub: ${(err as Error).message}\n`);
        },
        processInitialize: async () => {
          process.stderr.write('ready\n');
        },
      },
      { startPosition: values.from === 'earliest' ? earliestEventPosition : latestEventPosition },
    );
    process.once('SIGINT', () => void sub.close().then(resolve, reject));
  });
  await done;
  await client.close();
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err: unknown) => {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(1);
  });
}
