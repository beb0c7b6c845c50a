/** Manifest and verified-bundle types: the contract between bundle, enclave, trust and ta-runtime. */

export type TARuntimeKind = 'js' | 'wasm';

export interface TALimits {
  /** Heap limit of the enclave instance (worker old-space; Wasm memory maximum). */
  heapMb: number;
  stackKb: number;
  /** Calls that may run at once (the TCS count). */
  maxConcurrency: number;
  callTimeoutMs: number;
  /** Instances at once (instance-per-session TAs); absent: the runtime's default. */
  maxInstances?: number;
}

export interface TASessionModel {
  /** One instance shared by all sessions (true), or one instance per session (false). */
  singleInstance: boolean;
  /** More than one session may be open at once. */
  multiSession: boolean;
  /** Keep the instance alive when its last session closes. */
  keepAlive: boolean;
}

export interface TAManifest {
  name: string;
  uuid: string;
  version: string;
  productId: number;
  securityVersion: number;
  debug: boolean;
  runtime: TARuntimeKind;
  limits: TALimits;
  session: TASessionModel;
  hostCalls: string[];
  /** Commands callable only through a confidential envelope (see docs/confidential-calls.md). */
  confidentialCommands?: string[];
  /** The TA answers `attest` itself (declared, never discovered by calling it). */
  attest?: boolean;
  description?: string;
}

/** A bundle whose format, measurement and signature have been checked. */
export interface VerifiedBundle {
  manifest: TAManifest;
  /** JS: one CommonJS-format script whose module.exports(.default) is the TA definition. Wasm: module bytes. */
  code: Uint8Array;
  sourceMap?: Uint8Array;
  /** SHA-256 over canonical manifest and code, lowercase hex. */
  measurement: string;
  /** SHA-256 of the signer's SPKI DER, lowercase hex. */
  signerId: string;
  /** The signer's public key as SPKI DER. */
  signerSpki: Uint8Array;
  /** Optional X.509 chain from the JWS header, base64 DER, leaf first. */
  certificateChain?: string[];
  /** Total size of the .tab file in bytes. */
  size: number;
}
