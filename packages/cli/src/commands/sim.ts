/** `enclave-edge sim …`: run the offline IoT Edge simulator and get credentials for it. */
import { resolve, relative } from 'node:path';
import type { Command } from 'commander';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import type { SimulatorHandle } from '@enclave-edge/edge-sim';
import { eventHubConnectionString, loopbackProblem, moduleConnectionString, serviceHost } from '@enclave-edge/edge-sim/module-env';
import { blobKey, containerSasUrl } from '@enclave-edge/edge-sim/blob-target';
import { emit, action, table, warn, type GlobalOptions } from '../output.js';
import { cliCommand, shellQuote } from './cli-hint.js';

// Reading the simulator's state (zod schemas) and the hub client load only in the actions that need them.
const findSimulator = async (stateDir: string) => (await import('./hub-target.js')).findSimulator(stateDir);

const DEFAULT_STATE_DIR = '.edge-sim';

function port(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new EnclaveEdgeError('BAD_PARAMETERS', `not a port number: ${v}`);
  return n;
}

function loopback(v: string): string {
  const problem = loopbackProblem(v);
  if (problem) throw new EnclaveEdgeError('BAD_PARAMETERS', problem);
  return v;
}

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw new EnclaveEdgeError('BAD_PARAMETERS', `not a positive whole number: ${v}`);
  return n;
}

/**
 * The workload API defaults to a 0600 unix socket in the (0700) state folder, as aziot-edged
 * serves it: other OS users cannot reach it at all. A port on 127.0.0.1 when asked, on Windows,
 * or when the path would not fit in a socket address (104 bytes on macOS).
 */
function workloadListen(socket: string | false | undefined, stateDir: string): { workloadSocket?: string } {
  if (socket === false) return {};
  if (typeof socket === 'string') return { workloadSocket: socket };
  const path = resolve(stateDir, 'workload.sock');
  if (process.platform === 'win32') return {};
  if (Buffer.byteLength(path) > 100) {
    warn(`workload API on a 127.0.0.1 port: ${path} is too long for a unix socket (pass --workload-socket <shorter path>)`);
    return {};
  }
  return { workloadSocket: path };
}

/** Name the `sim up` option that fixes a port or state-folder failure of the simulator. */
function withOptionHint(err: unknown): unknown {
  if (!(err instanceof EnclaveEdgeError)) return err;
  const d = err.detail ?? {};
  const option = d.listener === 'mqtt' ? '--mqtt-port' : d.listener === 'https' ? '--https-port' : undefined;
  if (option) {
    const fix = err.code === 'CONFLICT' ? 'stop what holds it or' : 'choose another port or';
    return new EnclaveEdgeError(err.code, `${err.message} (${option}); ${fix} pass ${option} 0 for a free one`, { cause: err, detail: d });
  }
  if (typeof d.stateDir === 'string') return new EnclaveEdgeError(err.code, `${err.message}; pass --state-dir <a folder of yours>`, { cause: err, detail: d });
  return err;
}

function nextSteps(sim: SimulatorHandle, stateDir: string): string {
  const spec = sim.spec();
  const relPath = relative(process.cwd(), stateDir);
  const rel = relPath === '' ? '.' : relPath.startsWith('..') ? stateDir : relPath;
  // Every suggestion must find this simulator: name the state folder unless it is the default one.
  const at = resolve(stateDir) === resolve(DEFAULT_STATE_DIR) ? '' : ` --state-dir ${shellQuote(rel)}`;
  const running = spec.modules.filter((m) => m.status === 'running' && m.run.kind !== 'skipped');
  const example = running.find((m) => m.run.kind === 'local')?.name ?? running[0]?.name ?? '<module>';
  const ee = cliCommand();
  const hostModule = spec.modules.some((m) => m.name === 'host-module' && m.run.kind !== 'skipped');
  const invoke: [string, string] = hostModule
    ? [`${ee} invoke host-module invokeTA '{"ta":"hello","command":"ping"}'${at}`, 'a TA command through host-module']
    : [`${ee} invoke ${example} <method> '{}'${at}`, 'a direct method'];
  const hints: Array<[string, string]> = [
    [`${ee} monitor${at}`, 'messages routed to $upstream'],
    invoke,
    [`${ee} twin show ${example}${at}`, ''],
    [`${ee} console${at}`, 'the web console: TAs, telemetry, latency, attestation'],
    [`${ee} sim credentials${at}`, 'service connection string for other tools'],
    [`${ee} sim module-credentials <module>${at}`, 'run a module yourself (e.g. under a debugger)'],
  ];
  const width = Math.max(...hints.map(([c]) => c.length)) + 2;
  const lines = [
    `enclave-edge simulator is up: device ${sim.deviceId}, hub ${sim.hubHostName}`,
    `  edgeHub (MQTT/TLS)  mqtts://${sim.gatewayHostName}${sim.mqttPort === 8883 ? ':8883' : ''}`,
    `  service API         https://${serviceHost(sim)}  (module-to-module methods, MQTT and AMQP over WebSockets, the Event Hub endpoint over WebSockets too)${sim.httpsPort === 443 ? '' : '; not 443, so azure-iothub cannot reach it: see the warning above'}`,
    `  Event Hub endpoint  sb://${serviceHost({ ...sim, httpsPort: 443 })}${sim.amqpPort === 5671 ? '' : `:${sim.amqpPort}`}/ ${sim.eventHubName}  (AMQP/TLS, modules over AMQP too; sim credentials --json → eventHubCompatibleConnectionString)`,
    `  workload API        ${sim.workloadUri}`,
    `  CA certificate      ${rel}/ca.pem`,
    `  modules             ${spec.modules.map((m) => `${m.name} (${m.run.kind === 'skipped' ? 'skipped' : m.status})`).join(', ') || 'none'}`,
    '',
    'Try, from another terminal in this folder:',
    ...hints.map(([c, why]) => (why ? `  ${c.padEnd(width)}# ${why}` : `  ${c}`)),
    '',
    'Ctrl-C stops the simulator and every module.',
  ];
  return lines.join('\n');
}

export function register(program: Command): void {
  const sim = program.command('sim').description('the offline IoT Edge simulator (edgeHub, workload API, IoT Hub service API)');

  sim
    .command('up')
    .description('run the simulator with a deployment manifest until Ctrl-C')
    .option('--manifest <file>', 'deployment manifest', 'deployment.template.json')
    .option('--state-dir <dir>', 'state folder (CA, keys, ports)', DEFAULT_STATE_DIR)
    .option('--repo-root <dir>', 'folder with modules/<name>/module.json (default: the manifest\'s folder)')
    .option('--mqtt-port <port>', 'edgeHub MQTT/TLS port (default 8883, or a free port when taken)', port)
    .option('--https-port <port>', 'service API port (default 443, or a free port when taken)', port)
    .option('--host <address>', 'loopback address to listen on (default 127.0.0.1; e.g. 127.0.0.2 to run a second simulator with the standard ports)', loopback)
    .option('--workload-socket <path>', 'workload API unix socket, mode 0600 (default <state-dir>/workload.sock)')
    .option('--no-workload-socket', 'serve the workload API on a 127.0.0.1 port instead of a unix socket')
    .option('--store-max-messages <n>', 'store-and-forward bound per module input; the oldest go first (default 10000)', positiveInt)
    .option('--store-max-bytes <n>', 'store-and-forward bytes per module input (default 67108864, 64 MiB)', positiveInt)
    .action(
      action(async (o: { manifest: string; stateDir: string; repoRoot?: string; mqttPort?: number; httpsPort?: number; host?: string; workloadSocket?: string | false; storeMaxMessages?: number; storeMaxBytes?: number }, cmd: Command) => {
        const g = cmd.optsWithGlobals() as GlobalOptions;
        const { startSimulator } = await import('@enclave-edge/edge-sim');
        const handle = await startSimulator({
          manifest: resolve(o.manifest),
          stateDir: o.stateDir,
          ...(o.repoRoot ? { repoRoot: o.repoRoot } : {}),
          ...(o.mqttPort !== undefined ? { mqttPort: o.mqttPort } : {}),
          ...(o.httpsPort !== undefined ? { httpsPort: o.httpsPort } : {}),
          ...(o.host !== undefined ? { host: o.host } : {}),
          ...workloadListen(o.workloadSocket, o.stateDir),
          limits: {
            ...(o.storeMaxMessages !== undefined ? { storeMaxMessages: o.storeMaxMessages } : {}),
            ...(o.storeMaxBytes !== undefined ? { storeMaxBytes: o.storeMaxBytes } : {}),
          },
        }).catch((err: unknown) => {
          throw withOptionHint(err);
        });
        emit(
          g,
          {
            deviceId: handle.deviceId,
            hubHostName: handle.hubHostName,
            mqttPort: handle.mqttPort,
            httpsPort: handle.httpsPort,
            workloadUri: handle.workloadUri,
            caCertPath: handle.caCertPath,
            pid: process.pid,
            modules: handle.spec().modules.map((m) => ({ name: m.name, run: m.run.kind, status: m.status })),
          },
          () => nextSteps(handle, handle.stateDir),
        );
        let stopping = false;
        const stop = (signal: NodeJS.Signals): void => {
          if (stopping) {
            process.stderr.write('[edge-sim] forced exit\n');
            process.exit(130);
          }
          stopping = true;
          process.stderr.write(`[edge-sim] ${signal}: stopping modules and servers…\n`);
          handle.stop().then(
            () => {
              process.stderr.write('[edge-sim] stopped\n');
              process.exit(0);
            },
            (err) => {
              process.stderr.write(`[edge-sim] stop failed: ${(err as Error).message}\n`);
              process.exit(1);
            },
          );
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
        process.on('SIGHUP', stop);
        await new Promise(() => {}); // run until a signal
      }),
    );

  sim
    .command('credentials')
    .description('the service (iothubowner) connection string of the running simulator')
    .option('--state-dir <dir>', 'state folder', '.edge-sim')
    .action(
      action(async (o: { stateDir: string }, cmd: Command) => {
        const s = await findSimulator(o.stateDir);
        emit(
          cmd.optsWithGlobals() as GlobalOptions,
          {
            connectionString: s.connectionString,
            caCertPath: s.caCertPath,
            deviceId: s.deviceId,
            hubHostName: s.runtime.hubHostName,
            serviceUrl: `https://${serviceHost(s.gateway)}`,
            // What @azure/event-hubs consumers (back ends, Functions, Stream Analytics) read $upstream through.
            eventHubCompatibleConnectionString: eventHubConnectionString(s.gateway, s.state.hubKey) ?? null,
            // For $edgeAgent UploadModuleLogs / UploadSupportBundle: the simulator's local blob target.
            blobContainerSasUrl: containerSasUrl(`https://${serviceHost(s.gateway)}`, 'edge-logs', blobKey(s.state.hubKey)),
          },
          (v) => `${v.connectionString}\n${v.eventHubCompatibleConnectionString ? `# Event Hub-compatible endpoint: ${v.eventHubCompatibleConnectionString}\n` : ''}# trust ${v.caCertPath} (the simulator's CA, e.g. NODE_EXTRA_CA_CERTS); device ${v.deviceId}`,
        );
      }),
    );

  sim
    .command('module-credentials <module>')
    .description('a connection string + CA path so a module can run outside the simulator (e.g. under a debugger)')
    .option('--state-dir <dir>', 'state folder', '.edge-sim')
    .action(
      action(async (moduleId: string, o: { stateDir: string }, cmd: Command) => {
        if (!/^[A-Za-z0-9_.-]+$/.test(moduleId)) throw new EnclaveEdgeError('BAD_PARAMETERS', `not a module id: ${moduleId}`);
        const s = await findSimulator(o.stateDir);
        const ident = s.state.moduleIdentity(moduleId)!;
        const cs = moduleConnectionString(s.gateway, moduleId, ident.keyBase64);
        emit(
          cmd.optsWithGlobals() as GlobalOptions,
          { moduleId, EdgeHubConnectionString: cs, EdgeModuleCACertificateFile: s.caCertPath, httpsPort: s.runtime.httpsPort },
          (v) =>
            [
              `# Run ${moduleId} yourself with ModuleClient.fromEnvironment(Mqtt):`,
              `export EdgeHubConnectionString='${v.EdgeHubConnectionString}'`,
              `export EdgeModuleCACertificateFile='${v.EdgeModuleCACertificateFile}'`,
              `export EDGESIM_GATEWAY_HTTPS_PORT=${v.httpsPort}   # only for ModuleClient.invokeMethod (see edge-sim README)`,
            ].join('\n'),
        );
      }),
    );

  sim
    .command('status')
    .description('modules, processes and connections of the running simulator')
    .option('--state-dir <dir>', 'state folder', '.edge-sim')
    .action(
      action(async (o: { stateDir: string }, cmd: Command) => {
        const { resolveTarget } = await import('./hub-target.js');
        const t = await resolveTarget({ stateDir: o.stateDir });
        const status = (await t.client.simulatorStatus()) as {
          deviceId: string;
          modules: Array<{ name: string; run: string; status: string; connected: boolean; process: { state: string; pid?: number; restarts: number } | null }>;
          storedForForwarding: number;
          storeAndForward?: { dropped: number; destinations: Array<{ module: string; input: string; messages: number; dropped: number }> };
          upstream?: { readers: number; dropped: number };
        };
        t.client.close();
        emit(cmd.optsWithGlobals() as GlobalOptions, status, (v: typeof status) =>
          [
            `device ${v.deviceId}; ${v.storedForForwarding} message(s) held for modules not connected`,
            ...(v.storeAndForward?.destinations ?? [])
              .filter((d) => d.dropped > 0)
              .map((d) => `  store-and-forward full for ${d.module} input ${d.input}: ${d.dropped} oldest message(s) dropped, ${d.messages} held`),
            ...(v.upstream?.dropped ? [`  upstream stream: ${v.upstream.dropped} message(s) dropped for readers that fell behind`] : []),
            '',
            ...table([
              ['MODULE', 'RUN', 'STATE', 'CONNECTION', 'PID', 'RESTARTS'],
              ...v.modules.map((m) => [m.name, m.run, m.process?.state ?? m.status, m.connected ? 'connected' : 'not connected', m.process?.pid ? String(m.process.pid) : '-', String(m.process?.restarts ?? 0)]),
            ]).map((l) => `  ${l}`),
          ].join('\n'),
        );
      }),
    );
}
