/**
 * Service calls from an enclave worker, answered in the host with the enclave's own identity:
 * the TA never chooses whose keys or storage it reaches. Host calls go through one dispatcher
 * that admits only names in both the manifest's hostCalls and the runtime's handlers.
 */
import { EnclaveEdgeError, toEnclaveEdgeError } from '@enclave-edge/errors';
import type { JsonWebKeyPublic, SealPolicy, Value } from '@enclave-edge/ta-sdk';
import type { EnclaveCreateOptions, SealedStore, TAIdentity } from '../backend.js';
import type { SvcOp } from '../protocol.cjs';
import { copyValue, isProblem } from '../values.cjs';

const HEX = /^(?:[0-9a-fA-F]{2})+$/;
const B64URL = /^[A-Za-z0-9_-]+$/;

export function decodeNonce(nonce: unknown): Uint8Array {
  let bytes: Uint8Array | undefined;
  if (nonce instanceof Uint8Array) bytes = nonce;
  else if (typeof nonce === 'string' && HEX.test(nonce)) bytes = Buffer.from(nonce, 'hex');
  else if (typeof nonce === 'string' && B64URL.test(nonce)) bytes = Buffer.from(nonce, 'base64url');
  if (!bytes || bytes.length < 8 || bytes.length > 64) {
    throw new EnclaveEdgeError('BAD_PARAMETERS', 'attest nonce must be 8..64 bytes (Uint8Array, hex or base64url)');
  }
  return new Uint8Array(bytes);
}

export class TrustBridge {
  private store: SealedStore | undefined;

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

  async handle(op: SvcOp, args: Value[]): Promise<Value | undefined> {
    try {
      return await this.dispatch(op, args);
    } catch (err) {
      throw toEnclaveEdgeError(err, 'INTERNAL');
    }
  }

  private async dispatch(op: SvcOp, args: Value[]): Promise<Value | undefined> {
    const bytes = (v: Value | undefined) => (v instanceof Uint8Array ? v : undefined);
    switch (op) {
      case 'seal': {
        const [data, policy, context] = args;
        return this.services().seal(this.identity, bytes(data) ?? new Uint8Array(), { policy: policy as SealPolicy, ...(bytes(context) ? { context: bytes(context)! } : {}) });
      }
      case 'unseal': {
        const [blob, context] = args;
        return this.services().unseal(this.identity, bytes(blob) ?? new Uint8Array(), bytes(context) ? { context: bytes(context)! } : {});
      }
      case 'storage.get':
        return (await this.storage().get(String(args[0]))) ?? null;
      case 'storage.put':
        await this.storage().put(String(args[0]), bytes(args[1]) ?? new Uint8Array());
        return null;
      case 'storage.delete':
        return this.storage().delete(String(args[0]));
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
        const result = await handlers[name]!(this.identity, args[1] ?? null);
        const c = copyValue(result === undefined ? null : result, this.maxPayloadBytes, `host call "${name}" result`);
        if (isProblem(c)) throw new EnclaveEdgeError(c.code, c.message);
        return c.value;
      }
      default:
        throw new EnclaveEdgeError('NOT_SUPPORTED', `unknown service ${String(op)}`);
    }
  }
}
