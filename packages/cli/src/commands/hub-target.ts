/**
 * Which IoT Hub a command talks to: the running simulator (found through its state folder, the
 * default), a real hub by name (`--hub`, Entra ID via DefaultAzureCredential), or any hub by
 * policy connection string (`--connection-string`).
 */
import { readFileSync } from 'node:fs';
import { EnclaveEdgeError } from '@enclave-edge/errors';
// Light entry points only: the CLI should not load the broker to read a state file.
import { StateDir } from '@enclave-edge/edge-sim/state';
import { serviceConnectionString } from '@enclave-edge/edge-sim/module-env';
import { HubClient } from '@enclave-edge/hub-client';
import type { TargetOptions } from './target-options.js';

// Kept here too for the groups that import them from this file.
export { addTargetOptions, parseJsonArg, type TargetOptions } from './target-options.js';

export interface Target {
  client: HubClient;
  deviceId: string;
  simulator: boolean;
}

export async function resolveTarget(o: TargetOptions): Promise<Target> {
  if (o.hub && o.connectionString) throw new EnclaveEdgeError('BAD_PARAMETERS', 'give either --hub or --connection-string, not both');
  if (o.connectionString || o.hub) {
    if (!o.device) throw new EnclaveEdgeError('BAD_PARAMETERS', '--device is required with --hub or --connection-string');
    const client = o.connectionString ? HubClient.fromConnectionString(o.connectionString) : await HubClient.fromAzureCredential(o.hub!);
    return { client, deviceId: o.device, simulator: false };
  }
  const sim = findSimulator(o.stateDir);
  const client = HubClient.fromConnectionString(sim.connectionString, { ca: readFileSync(sim.caCertPath, 'utf8') });
  return { client, deviceId: o.device ?? sim.deviceId, simulator: true };
}

/** The running simulator's coordinates, or a clear error saying how to start one. */
export function findSimulator(stateDir = '.edge-sim') {
  const state = StateDir.openExisting(stateDir);
  const rt = state.readRuntime();
  if (!rt) throw new EnclaveEdgeError('UNAVAILABLE', `no simulator is running for ${state.dir}; start one with \`npm start\` or \`enclave-edge sim up\``);
  const gateway = { hubHostName: rt.hubHostName, deviceId: rt.deviceId, mqttPort: rt.mqttPort, httpsPort: rt.httpsPort, workloadUri: rt.workloadUri, caCertPath: state.caCertPath, ...(rt.host ? { host: rt.host } : {}), ...(rt.amqpPort !== undefined ? { amqpPort: rt.amqpPort } : {}) };
  return { state, runtime: rt, gateway, deviceId: rt.deviceId, caCertPath: state.caCertPath, connectionString: serviceConnectionString(gateway, state.hubKey) };
}
