/**
 * TA unit tests in the real emulated enclave: the bundle is admitted by the runtime's admit() and
 * runs in the backend the registry creates (the same worker/process isolation, Wasm ABI, limits
 * and error codes as on a device), with real sealing and storage over a DEVELOPMENT-GRADE software
 * root of trust in a throw-away state directory.
 *
 * The test policy it states: the signers in `trustedSigners` (default: the public DEV signer);
 * an unsigned bundle (`buildTA(dir, { write: false })`) is signed with a key made for this one
 * load and trusted for it alone; debug builds are allowed (tests build them); the emulated
 * backend; the default operator caps; no remote loading.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeBundle, generateSigningKey, pemSigner, signBundle, DEV_SIGNER_ID, type TAManifest } from '@enclave-edge/bundle';
import type { Value } from '@enclave-edge/ta-sdk';
import type { LogLevel } from '@enclave-edge/enclave';
import { ConfidentialClient } from '@enclave-edge/confidential/client';
import { ENCLAVE_ATTEST_COMMAND } from '@enclave-edge/confidential/names';
import { decodeValue, encodeValue } from '@enclave-edge/protocol/value-codec';
import { openLocalTA } from './run-local.js';

export interface TALogLine {
  level: LogLevel;
  message: string;
  fields?: Record<string, unknown>;
}

export interface TAForTestsOptions {
  /** Signers (signer_id hex) trusted for a signed bundle. Default: the DEV signer. */
  trustedSigners?: readonly string[];
  /** Where the software root and sealed storage live. Default: a fresh temp dir, removed by destroy(). */
  stateDir?: string;
}

export interface TAForTests {
  manifest: TAManifest;
  measurement: string;
  signerId: string;
  /** The TA's own log lines (ctx.log), in order. */
  logs: TALogLine[];
  /** The state directory (software root of trust, sealed storage files). */
  stateDir: string;
  invoke(command: string, params?: Value): Promise<Value>;
  /**
   * A confidential call (the one way into a command the manifest lists in confidentialCommands):
   * sealed with HPKE to the key the TA's evidence attests, checked against this run's device CA,
   * as ConfidentialClient does on a device.
   */
  invokeConfidential(command: string, params?: Value): Promise<Value>;
  /** Open a session; later invoke() calls run in it until closeSession(). */
  openSession(params?: Value): Promise<void>;
  closeSession(): Promise<void>;
  /** Destroy the enclave, close the root of trust and remove a temp state dir. */
  destroy(): Promise<void>;
}

/** Load a built .tab (signed or not) into the real emulated enclave, admitted under the test policy above. */
export async function loadTAForTests(bundle: Uint8Array, options: TAForTestsOptions = {}): Promise<TAForTests> {
  let bytes = bundle;
  let trustedSigners = options.trustedSigners ?? [DEV_SIGNER_ID];
  if (decodeBundle(bundle).signature === undefined) {
    const key = generateSigningKey();
    bytes = await signBundle(bundle, pemSigner(key.privateKeyPem));
    trustedSigners = [key.signerId];
  }
  const stateDir = options.stateDir ?? mkdtempSync(join(tmpdir(), 'ee-ta-test-'));
  const removeState = () => {
    if (!options.stateDir) rmSync(stateDir, { recursive: true, force: true });
  };
  const logs: TALogLine[] = [];
  let local;
  try {
    local = await openLocalTA(bytes, {
      trustedSigners,
      allowDebug: true,
      stateDir,
      log: (level, _ta, message, fields) => logs.push(fields && Object.keys(fields).length ? { level, message, fields } : { level, message }),
    });
  } catch (err) {
    removeState();
    throw err;
  }
  const { enclave } = local;
  const close = local.close;
  let session: string | undefined;
  let destroyed: Promise<void> | undefined;
  const name = local.bundle.manifest.name;
  let client: Promise<ConfidentialClient> | undefined;
  // The runtime's request path without the wire: evidence through the enclave (it binds the TA's
  // HPKE key), params and results in wire form.
  const transport = {
    attest: async (_ta: string, nonce: string) => String(await enclave.invoke(undefined, ENCLAVE_ATTEST_COMMAND, { nonce })),
    invoke: async (_ta: string, command: string, params: Parameters<typeof decodeValue>[0]) => encodeValue((await enclave.invoke(session, command, decodeValue(params))) ?? null),
  };
  const confidentialClient = () =>
    (client ??= (async () => {
      // The software root makes its device CA on the first attestation.
      await transport.attest(name, randomBytes(16).toString('hex'));
      return new ConfidentialClient({ transport, trustAnchors: readFileSync(local.rootOfTrust.deviceCaPath, 'utf8'), allowEmulated: true });
    })());
  return {
    manifest: local.bundle.manifest,
    measurement: local.bundle.measurement,
    signerId: local.bundle.signerId,
    logs,
    stateDir,
    invoke: (command, params = null) => enclave.invoke(session, command, params),
    invokeConfidential: async (command, params = null) => (await confidentialClient()).invoke(name, command, params, session === undefined ? {} : { sessionId: session }),
    async openSession(params = null) {
      session = await enclave.openSession(params);
    },
    async closeSession() {
      const s = session;
      session = undefined;
      if (s !== undefined) await enclave.closeSession(s);
    },
    destroy: () =>
      (destroyed ??= (async () => {
        try {
          await close();
        } finally {
          removeState();
        }
      })()),
  };
}
