/** Public types of the IoT Edge workload API emulation. */

export interface WorkloadModuleIdentity {
  /** Must match the `genid` in the request path (IOTEDGE_MODULEGENERATIONID). */
  generationId: string;
  /** The module's SAS key (the key edgeHub checks the module's SAS tokens against). */
  key: Buffer;
}

export type WorkloadListen =
  /** Loopback only (127.0.0.1, ::1 or localhost); port 0 picks a free port. */
  | { host?: string; port: number }
  /** A unix socket, created 0600; a stale socket file at the path is replaced. */
  | { socketPath: string };

export interface WorkloadApiOptions {
  listen: WorkloadListen;
  /** PEM of the CA that signs edgeHub's server certificate (GET /trust-bundle). */
  trustBundlePem: string | (() => string);
  /** Looks a module up by id; undefined = unknown module (404). */
  modules: (moduleId: string) => WorkloadModuleIdentity | undefined;
  /** Root secret of encrypt/decrypt (≥ 32 bytes); per-module keys are derived from it. */
  masterSecret: Buffer;
}

export interface WorkloadApi {
  /** `http://127.0.0.1:PORT` or `unix:///path/workload.sock` — the value for IOTEDGE_WORKLOADURI. */
  uri: string;
  close(): Promise<void>;
}
