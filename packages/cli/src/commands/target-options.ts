/**
 * The options that pick a hub (`--state-dir`, `--device`, `--hub`, `--connection-string`) and
 * JSON arguments: light helpers a group can use while registering, without importing the
 * simulator state or the hub client (those live in hub-target.ts, imported by actions).
 */
import type { Command } from 'commander';
import { EnclaveEdgeError } from '@enclave-edge/errors';

export interface TargetOptions {
  stateDir?: string;
  hub?: string;
  connectionString?: string;
  device?: string;
}

export function addTargetOptions(cmd: Command): Command {
  return cmd
    .option('--state-dir <dir>', 'simulator state folder', '.edge-sim')
    .option('--device <id>', 'device id (default: the simulator\'s device)')
    .option('--hub <name>', 'a real IoT Hub by name (Entra ID sign-in via DefaultAzureCredential, e.g. `az login`)')
    .option('--connection-string <cs>', 'an IoT Hub policy connection string (e.g. iothubowner)');
}

/** Parse a JSON argument; a bare word that is not JSON is taken as a string. */
export function parseJsonArg(text: string | undefined, what: string): unknown {
  if (text === undefined) return null;
  try {
    return JSON.parse(text);
  } catch (err) {
    if (/^[\w.-]+$/.test(text)) return text;
    throw new EnclaveEdgeError('BAD_PARAMETERS', `${what} is not valid JSON: ${(err as Error).message}`);
  }
}
