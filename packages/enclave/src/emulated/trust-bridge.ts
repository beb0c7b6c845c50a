/**
 * Service calls from an enclave worker, answered in the host with the enclave's own identity:
 * the TA never chooses whose keys or storage it reaches. Host calls go through one dispatcher
 * that admits only names in both the manifest's hostCalls and the runtime's handlers.
 */
import { EnclaveEdgeError, toEnclaveEdgeError } from '@enclave-edge/errors';
import type { JsonWebKeyPublic, SealPolicy, Value } from '@enclave-edge/ta-sdk';
import { decodeNonce } from '@enclave-edge/attestation/nonce';
import type { EnclaveCreateOptions, SealedStore, TAIdentity } from '../contract.js';
import type { SvcOp } from './wire/protocol.cjs';
import { copyValue, isProblem } from './wire/values.cjs';
import { ConfidentialState } from './confidential-state.js';

export { decodeNonce };

export class TrustBridge {
  private store: SealedStore | undefined;
  private confidentialState: ConfidentialState | undefined;

  constructor(
    private readonly identity: TAIdentity,
    private readonly tee: string,
    private readonly manifestHostCalls: readonly string[],
    private readonly options: EnclaveCreateOptions,
    private readonly maxPayloadBytes: number,
  ) {}

  private services() {
    const s = this.options.services;
    if (!s) throw new EnclaveEdgeError('NOT_SUPPORTED', 'sealing, storage and attestation are not available: this enclave was created without trust services');
    return s;
  }

  private storage(): SealedStore {
    return (this.store ??= this.services().storage(this.identity));
  }

  private confidential(): ConfidentialState {
    return (this.confidentialState ??= new ConfidentialState(this.identity, () => this.storage()));
  }
  /** The replay memory of confidential envelopes (ConfidentialState.reserveRequestId). */
  reserveRequestId(rid: string, expiresAt: number): 'fresh' | 'replay' | 'full' {
    return this.confidential().reserveRequestId(rid, expiresAt);
  }

  releaseRequestId(rid: string): void {
    this.confidential().releaseRequestId(rid);
  }


  async handle(op: SvcOp, args: Value[]): Promise<Value | undefined> {
    try {
      return await this.dispatch(op, args);
    } catch (err) {
      throw toEnclaveEdgeError(err, 'INTERNAL');
    }
  }

  private async dispatch(op: SvcOp, args: Value[]): Promise<Value | undefined> {
    // The worker already checked these; the host checks again rather than trust the message.
    const bytes = (v: Value | undefined, what: string): Uint8Array => {
      if (v instanceof Uint8Array) return v;
      throw new EnclaveEdgeError('BAD_PARAMETERS', `${what} must be a Uint8Array`);
    };
    const optionalBytes = (v: Value | undefined, what: string) => (v === null || v === undefined ? undefined : bytes(v, what));
    const key = (v: Value | undefined): string => {
      if (typeof v === 'string' && /^[A-Za-z0-9._-]{1,128}$/.test(v)) return v;
      throw new EnclaveEdgeError('BAD_PARAMETERS', 'storage keys are 1..128 characters of A-Z, a-z, 0-9, ".", "_", "-"');
    };
    switch (op) {
      case 'seal': {
        const [data, policy, context] = args;
        if (policy !== 'unique' && policy !== 'product') throw new EnclaveEdgeError('BAD_PARAMETERS', 'seal policy must be "unique" or "product"');
        const c = optionalBytes(context, 'seal context');
        return this.services().seal(this.identity, bytes(data, 'seal data'), { policy, ...(c ? { context: c } : {}) });
      }
      case 'unseal': {
        const [blob, context] = args;
        const c = optionalBytes(context, 'unseal context');
        return this.services().unseal(this.identity, bytes(blob, 'sealed blob'), c ? { context: c } : {});
      }
      case 'storage.get':
        return (await this.storage().get(key(args[0]))) ?? null;
      case 'storage.put':
        await this.storage().put(key(args[0]), bytes(args[1], 'storage value'));
        return null;
      case 'storage.delete':
        return this.storage().delete(key(args[0]));
      case 'storage.list':
        return this.storage().list(typeof args[0] === 'string' ? args[0] : undefined);
      case 'attest': {
        const nonce = decodeNonce(args[0]);
        const extra = (args[1] ?? {}) as { claims?: Record<string, Value> | null; publicKey?: Value };
        return this.services().attest(this.identity, {
          nonce,
          tee: this.tee,
          ...(extra.claims ? { claims: extra.claims } : {}),
          ...(extra.publicKey ? { publicKey: extra.publicKey as unknown as JsonWebKeyPublic } : {}),
        });
      }
      case 'host': {
        const name = String(args[0]);
        const handlers = this.options.hostCalls ?? {};
        if (!this.manifestHostCalls.includes(name) || !Object.hasOwn(handlers, name) || typeof handlers[name] !== 'function') {
          throw new EnclaveEdgeError('ACCESS_DENIED', `host call "${name}" is not available to TA "${this.identity.name}"`);
        }
        const a = copyValue(args[1] ?? null, this.maxPayloadBytes, `host call "${name}" arguments`);
        if (isProblem(a)) throw new EnclaveEdgeError(a.code, a.message);
        const result = await handlers[name]!(this.identity, a.value);
        const c = copyValue(result === undefined ? null : result, this.maxPayloadBytes, `host call "${name}" result`);
        if (isProblem(c)) throw new EnclaveEdgeError(c.code, c.message);
        return c.value;
      }
      case 'hpkeKey.get':
        return this.confidential().getKeyBlob();
      case 'hpkeKey.swap':
        return this.confidential().swapKeyBlob(bytes(args[0], 'key blob'), optionalBytes(args[1], 'expected key blob') ?? null);
      default:
        throw new EnclaveEdgeError('NOT_SUPPORTED', `unknown service ${String(op)}`);
    }
  }
}
