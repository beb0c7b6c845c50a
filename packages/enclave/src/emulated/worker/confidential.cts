/**
 * The enclave's end of confidential calls, in the worker (trusted runtime code, outside the TA's
 * compartment): the TA's HPKE key pair, created here and kept only sealed (`unique`) outside it;
 * envelopes opened and answers sealed here, so the enclave host, ta-runtime, host-module and
 * edgeHub only ever carry ciphertext. The HPKE code loads on first use.
 */
import type { Value, JsonWebKeyPublic } from '@enclave-edge/ta-sdk';
import type { WireError, WorkerInit } from '../wire/protocol.cjs';
import { codedError, type ServiceRpc } from './rpc.cjs';
import type { LogPoster } from './log-poster.cjs';

type Envelope = typeof import('@enclave-edge/confidential/envelope');
type Suite = typeof import('@enclave-edge/confidential/suite');
type Codec = typeof import('@enclave-edge/protocol/value-codec');
type KeyPair = Awaited<ReturnType<Suite['generateHpkeKeyPair']>>;

const KEY_SEAL_CONTEXT = new TextEncoder().encode('enclave-edge/v1/hpke-key');

/** Runs one TA command as a confidential call and returns its result, or throws the TA's error. */
export type RunCommand = (command: string, params: Value) => Promise<{ value: Value }>;

export type ConfidentialOutcome = { ok: true; value: Value } | { ok: false; error: WireError };

interface Libs {
  envelope: Envelope;
  suite: Suite;
  codec: Codec;
}

export class ConfidentialEndpoint {
  private libs: Promise<Libs> | undefined;
  private key: Promise<{ pair: KeyPair; jwk: JsonWebKeyPublic }> | undefined;
  private loaded: Libs | undefined;
  private pair: KeyPair | undefined;

  constructor(
    private readonly init: WorkerInit,
    private readonly rpc: ServiceRpc,
    private readonly logs: LogPoster,
    private readonly toWire: (err: unknown) => WireError,
  ) {}

  private load(): Promise<Libs> {
    return (this.libs ??= Promise.all([
      import('@enclave-edge/confidential/envelope'),
      import('@enclave-edge/confidential/suite'),
      import('@enclave-edge/protocol/value-codec'),
    ]).then(([envelope, suite, codec]) => ({ envelope, suite, codec })));
  }

  /** The TA's key: unsealed from its blob, or made here and sealed once for every instance. */
  publicKey(): Promise<JsonWebKeyPublic> {
    return this.keyPair().then((k) => k.jwk);
  }

  private keyPair(): Promise<{ pair: KeyPair; jwk: JsonWebKeyPublic }> {
    const p = (this.key ??= this.loadOrCreateKey());
    p.catch(() => {
      if (this.key === p) this.key = undefined;
    });
    return p;
  }

  private async loadOrCreateKey(): Promise<{ pair: KeyPair; jwk: JsonWebKeyPublic }> {
    const { suite } = await this.load();
    const fromBlob = async (blob: Uint8Array) => {
      const raw = (await this.rpc.call('unseal', [blob, KEY_SEAL_CONTEXT])) as Uint8Array;
      try {
        return await suite.importHpkeKeyPair(raw.slice(0, 32), raw.slice(32, 64));
      } finally {
        raw.fill(0);
      }
    };
    const stored = (await this.rpc.call('hpkeKey.get', [])) as Uint8Array | null;
    let pair: KeyPair | undefined;
    if (stored) {
      try {
        pair = await fromBlob(stored);
      } catch (err) {
        // Fail closed on the old key, not on the TA: a new key is bound in fresh evidence.
        const w = this.toWire(err);
        const message = `the sealed HPKE key of this TA does not open (${w.code}); a new key is made and callers must fetch fresh evidence`;
        this.logs.post('warn', message, undefined, message.length);
      }
    }
    if (!pair) {
      const made = await suite.generateHpkeKeyPair();
      const both = new Uint8Array(64);
      both.set(made.rawPrivate, 0);
      both.set(made.rawPublic, 32);
      const blob = (await this.rpc.call('seal', [both, 'unique', KEY_SEAL_CONTEXT])) as Uint8Array;
      both.fill(0);
      const winner = (await this.rpc.call('hpkeKey.swap', [blob, stored ?? null])) as Uint8Array;
      pair = Buffer.from(winner).equals(Buffer.from(blob)) ? made : await fromBlob(winner);
    }
    return { pair, jwk: suite.publicJwkOf(pair.rawPublic) as unknown as JsonWebKeyPublic };
  }

  /** Evidence for this TA that binds its HPKE key; the caller's claims are not accepted here. */
  async attest(params: Value): Promise<string> {
    const nonce = params && typeof params === 'object' && !Array.isArray(params) && !(params instanceof Uint8Array) ? (params as Record<string, Value>).nonce : undefined;
    if (typeof nonce !== 'string' && !(nonce instanceof Uint8Array)) throw codedError('BAD_PARAMETERS', 'attest needs { nonce }');
    return (await this.rpc.call('attest', [nonce, { claims: null, publicKey: (await this.publicKey()) as unknown as Value }])) as string;
  }

  /**
   * Open one envelope, run its command as a confidential call, and seal the answer to the caller.
   * Refusals come back as plain errors naming the reason (never the plaintext); everything the
   * TA said, errors included, goes back inside the sealed answer.
   */
  async serve(envelopeValue: Value, run: RunCommand): Promise<ConfidentialOutcome> {
    let libs: Libs;
    let opened: Awaited<ReturnType<Envelope['openRequest']>>;
    try {
      // Once loaded, the libraries and the key are used without waiting on their promises again.
      libs = this.loaded ?? (this.loaded = await this.load());
      const parsed = libs.envelope.parseRequestEnvelope(envelopeValue, { ta: this.init.ta.name, measurement: this.init.ta.measurement });
      const pair = this.pair ?? (this.pair = (await this.keyPair()).pair);
      // Single use is the enclave host's: it reserved the request id before this instance got it.
      opened = await libs.envelope.openRequest(parsed, pair);
    } catch (err) {
      return { ok: false, error: refusal(err) };
    }
    const { codec } = libs;
    let inner: Parameters<typeof opened.sealResponse>[0];
    try {
      if (opened.command.startsWith('__ee_')) throw codedError('ACCESS_DENIED', `"${opened.command}" cannot be called inside an envelope`);
      const { value } = await run(opened.command, codec.decodeValue(opened.params));
      inner = { ok: true, result: codec.encodeValue(value) as never };
    } catch (err) {
      const w = this.toWire(err);
      inner = { ok: false, error: { code: w.code, message: w.message } };
    }
    return { ok: true, value: opened.sealResponse(inner) as unknown as Value };
  }
}

/** An envelope refusal as a wire error: its own code and reason, nothing else from the input. */
function refusal(err: unknown): WireError {
  const e = err as { code?: unknown; message?: unknown; reason?: unknown };
  if (typeof e?.reason === 'string' && typeof e.code === 'string' && typeof e.message === 'string') return { code: e.code as WireError['code'], message: e.message };
  if (typeof e?.code === 'string' && typeof e.message === 'string') return { code: e.code as WireError['code'], message: `confidential call refused: ${e.message}` };
  return { code: 'INTERNAL', message: 'confidential call refused: the envelope could not be processed' };
}
