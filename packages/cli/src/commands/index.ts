/**
 * Each command group lives in its own file and registers itself with `register(program)`.
 * Groups are imported lazily: a start-up loads only the group named on the command line, so
 * `enclave-edge ta inspect` never pays for the simulator, the verifier or the Azure SDKs.
 * `commands` lists what each group registers at the top level, with the help-listing term and
 * description, so `enclave-edge --help` can list everything without importing any group
 * (tests/cli/conventions.test.ts checks these against the real registrations).
 */
import type { Command } from 'commander';

export type RegisterCommands = (program: Command) => void;

export interface TopLevelCommand {
  /** As commander lists it in `enclave-edge --help`, e.g. `verify [options] <token>`. */
  term: string;
  description: string;
}

export interface CommandGroup {
  /** Source file, for error messages. */
  file: string;
  commands: Record<string, TopLevelCommand>;
  load: () => Promise<{ register: RegisterCommands }>;
}

export const commandGroups: CommandGroup[] = [
  {
    file: 'sim.ts',
    commands: { sim: { term: 'sim', description: 'the offline IoT Edge simulator (edgeHub, workload API, IoT Hub service API)' } },
    load: () => import('./sim.js'),
  },
  {
    file: 'hub.ts',
    commands: {
      invoke: { term: 'invoke [options] <module> <method> [payload]', description: 'invoke a direct method on a module (payload is JSON; default null)' },
      monitor: { term: 'monitor [options]', description: 'print every message routed to $upstream (module, properties, body), like az iot hub monitor-events' },
      twin: { term: 'twin', description: 'module twins' },
    },
    load: () => import('./hub.js'),
  },
  {
    file: 'ta.ts',
    commands: { ta: { term: 'ta', description: 'Trusted applications: scaffold, build, sign, inspect, verify, run locally' } },
    load: () => import('./ta.js'),
  },
  {
    file: 'device.ts',
    commands: { device: { term: 'device', description: 'device attestation identity (key in the root of trust, certificate chain)' } },
    load: () => import('./device.js'),
  },
  {
    file: 'verify.ts',
    commands: {
      verify: {
        term: 'verify [options] <token>',
        description: 'verify attestation evidence (EAT JWT, a file holding it, or - for stdin): signature, chain, freshness, nonce, policy',
      },
    },
    load: () => import('./verify.js'),
  },
  {
    file: 'console.ts',
    commands: { console: { term: 'console [options]', description: 'serve the local web console (modules, TAs, telemetry, latency, attestation, twins) on 127.0.0.1 behind a random token' } },
    load: () => import('./console.js'),
  },
  {
    file: 'deploy.ts',
    commands: { deploy: { term: 'deploy', description: 'generate deployment manifests and deploy them to a device or a fleet' } },
    load: () => import('./deploy.js'),
  },
];
