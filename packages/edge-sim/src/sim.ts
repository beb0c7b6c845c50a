/**
 * startSimulator: state folder + edgeHub (MQTT/TLS) + workload API + service API + module
 * supervisor, driven by a deployment manifest. One handle stops everything.
 */
import { resolve, join } from 'node:path';
import { mkdirSync, readFileSync } from 'node:fs';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import { escapeLogText } from '@enclave-edge/observability/escape';
import { StateDir } from './state/index.js';
import { HUB_STATE_FILE, HubStateFile, manifestFingerprint } from './state/hub-state.js';
import { FORWARDING_FILE, ForwardingJournal } from './state/hub-state-forwarding.js';
import { EVENTS_FILE, EventsJournal } from './state/hub-state-events.js';
import { EdgeHub, type UpstreamMessage } from './hub/edge-hub.js';
import type { JsonObject } from './hub/twins.js';
import { moduleNotFound } from './hub/hub-error.js';
import { startServiceApi } from './service/server.js';
import { compileRoutes } from './routes/index.js';
import { loadDeployment, parseDeployment, diffDeployments, type DeploymentSpec, type ModuleSpec } from './deployment/index.js';
import { Supervisor } from './supervisor/index.js';
import { startWorkloadApi } from './workload/index.js';
import { ModuleLogBuffer } from './agent/log-buffer.js';
import { attachEdgeAgent, isSystemModule, runtimeLogLine, SYSTEM_MODULES } from './agent/attach.js';
import { BlobTarget, containerSasUrl, blobKey } from './agent/blob-target.js';
import { EventStore } from './eventhub/event-store.js';
import { SimRegistry } from './registry/registry.js';
import type { ConfigurationInput } from './registry/configurations.js';
import { mergePatch } from './hub/twins.js';
import { EventHubEndpoint } from './eventhub/amqp-endpoint.js';
import { AmqpModules } from './hub/amqp-modules.js';
import { edgeModuleEnv, eventHubConnectionString, eventHubName, loopbackProblem, moduleConnectionString, serviceHost, serviceConnectionString, baseProcessEnv, gatewayHostName, type GatewayInfo } from './module-env.js';

export interface SimulatorOptions {
  /** deployment.template.json path, or the parsed manifest. Default `<repoRoot>/deployment.template.json`. */
  manifest?: string | Record<string, unknown>;
  /** Default `.edge-sim` in the current directory. */
  stateDir?: string;
  /** Where `modules/<name>/module.json` live. Default: the manifest's folder, else cwd. */
  repoRoot?: string;
  /** Default 8883, falling back to a free port when taken. */
  mqttPort?: number;
  /** Service API + module-to-module methods. Default 443 (as on a device), falling back to a free port. */
  httpsPort?: number;
  /**
   * The loopback address every listener binds (default 127.0.0.1, named `localhost` in connection
   * strings). Another address (a loopback alias such as 127.0.0.2) lets several simulators each
   * have the ports official clients dial (443, 8883, 5671); it is then the host name clients use.
   */
  host?: string;
  /** The Event Hub-compatible endpoint (AMQP 1.0/TLS). Default 5671, falling back to a free port. */
  amqpPort?: number;
  /** Partitions of the Event Hub-compatible endpoint (default 4, as IoT Hub) and its retention bound per partition. */
  eventHub?: { partitions?: number; maxEventsPerPartition?: number; maxBytesPerPartition?: number };
  /** Workload API port on 127.0.0.1. Default: a free port. */
  workloadPort?: number;
  /** Serve the workload API on this unix socket instead (IOTEDGE_WORKLOADURI=unix://…, as aziot-edged does). */
  workloadSocket?: string;
  deviceId?: string;
  hubHostName?: string;
  /** Start the manifest's modules as child processes (default true). */
  runModules?: boolean;
  /** Extra module identities to create (for modules run outside the simulator, e.g. in tests). */
  extraModules?: string[];
  /** Write state.json so the CLI finds this simulator (default true). */
  writeState?: boolean;
  /** Keep twins and the applied deployment in <stateDir>/hub-state.json across restarts (default true). */
  persistHubState?: boolean;
  /** Simulator log lines (default: stderr with a `[edge-sim]` prefix). */
  log?: (line: string) => void;
  /** Where module output goes (default stdout). */
  moduleOutput?: NodeJS.WritableStream;
  /**
   * Memory bounds: store-and-forward per destination (default 10,000 messages / 64 MiB, oldest
   * dropped past either) and the bytes a slow `/edge-sim/upstream` reader may leave buffered
   * (default 8 MiB; messages for it are dropped past that and it is told how many).
   */
  limits?: { storeMaxMessages?: number; storeMaxBytes?: number; upstreamBufferBytes?: number };
  /** Supervisor back-off (tests shorten it). */
  backoff?: { initialMs?: number; maxMs?: number; resetAfterMs?: number };
}

export interface SimulatorHandle extends GatewayInfo {
  stateDir: string;
  gatewayHostName: string;
  serviceConnectionString: string;
  /** The Event Hub-compatible connection string of `$upstream` (for @azure/event-hubs consumers). */
  eventHubConnectionString: string;
  eventHubName: string;
  /** Event Hub partition receivers attached right now. */
  eventHubReceivers(): number;
  hub: EdgeHub;
  supervisor: Supervisor;
  spec(): DeploymentSpec;
  moduleConnectionString(moduleId: string): string;
  /** IOTEDGE_* environment for a module run outside the simulator. */
  moduleEnv(moduleId: string): Record<string, string>;
  /** Redeploy: the same as POST /devices/{d}/applyConfigurationContent. */
  applyConfiguration(content: { modulesContent: Record<string, unknown> }): Promise<void>;
  onUpstream(listener: (m: UpstreamMessage) => void): () => void;
  /** A container SAS URL of the simulator's local blob target (for UploadModuleLogs / UploadSupportBundle). */
  blobContainerSasUrl(container: string): string;
  /** Where the local blob target writes a container's blobs. */
  blobContainerDir(container: string): string;
  stop(): Promise<void>;
}

export async function startSimulator(options: SimulatorOptions = {}): Promise<SimulatorHandle> {
  // Lines carry client ids, module ids and route names from outside: escaped once, here, for every sink.
  const sink = options.log ?? ((line: string) => process.stderr.write(`[edge-sim] ${line}\n`));
  // The runtime's own lines are also edgeAgent's and edgeHub's logs (GetModuleLogs), as on a device.
  const logs = new ModuleLogBuffer();
  const log = (line: string): void => {
    const safe = escapeLogText(line);
    sink(safe);
    logs.add('edgeAgent', 'stdout', runtimeLogLine(safe));
  };
  const hubLog = (line: string): void => {
    const safe = escapeLogText(line);
    sink(safe);
    logs.add('edgeHub', 'stdout', runtimeLogLine(safe));
  };
  const repoRoot = resolve(options.repoRoot ?? (typeof options.manifest === 'string' ? resolve(options.manifest, '..') : process.cwd()));
  const manifestPath = typeof options.manifest === 'string' ? resolve(options.manifest) : options.manifest ? undefined : resolve(repoRoot, 'deployment.template.json');
  // Parse first: an invalid manifest or route stops us before anything listens.
  let spec = manifestPath ? loadDeployment(manifestPath, { repoRoot }) : parseDeployment(options.manifest, { repoRoot });
  let routes = compileRoutes(spec.routes);
  for (const w of spec.warnings) log(`warning: ${w}`);

  const host = options.host ?? '127.0.0.1';
  const hostProblem = loopbackProblem(host);
  if (hostProblem) throw new EnclaveEdgeError('BAD_PARAMETERS', `host: ${hostProblem}`);
  const state = await StateDir.open(options.stateDir ?? '.edge-sim', host);
  const running = state.readRuntime();
  if (running && options.writeState !== false) {
    throw new EnclaveEdgeError('CONFLICT', `a simulator (pid ${running.pid}) already uses ${state.dir}; stop it or pass another --state-dir`);
  }
  // Hub state (twins, the applied deployment) kept from the last run of this manifest.
  const hubState = options.persistHubState === false
    ? undefined
    : new HubStateFile(join(state.dir, HUB_STATE_FILE), manifestFingerprint(manifestPath ? readFileSync(manifestPath, 'utf8') : options.manifest), log);
  const saved = hubState?.load();
  let appliedDeployment = saved?.deployment ?? null;
  if (appliedDeployment) {
    spec = parseDeployment(appliedDeployment, { repoRoot }, 'saved deployment');
    routes = compileRoutes(spec.routes);
  }
  const deviceId = options.deviceId ?? 'edge-sim-device';
  const hubHostName = options.hubHostName ?? 'edge-sim.local';
  for (const m of spec.modules) state.moduleIdentity(m.name);
  for (const m of options.extraModules ?? []) state.moduleIdentity(m);
  const moduleKey = (m: string): string | undefined => state.moduleIdentity(m, false)?.keyBase64;
  const tlsPair = { key: state.serverKeyPem, cert: state.serverCertPem };

  const closers: Array<() => Promise<void>> = [];
  const closeAll = async (): Promise<void> => {
    for (const c of closers.splice(0).reverse()) await c().catch((err) => log(`shutdown: ${(err as Error).message}`));
  };
  try {
    // Messages for module inputs not yet acknowledged, kept with the hub state.
    const forwarding = hubState ? new ForwardingJournal(join(state.dir, FORWARDING_FILE), log) : undefined;
    if (forwarding) closers.push(async () => forwarding.close());
    // The built-in endpoint's events, kept on disk with the hub state.
    const eventsJournal = hubState ? new EventsJournal(join(state.dir, EVENTS_FILE), log) : undefined;
    if (eventsJournal) closers.push(async () => eventsJournal.close());
    const events = new EventStore(options.eventHub?.partitions, {
      ...(options.eventHub?.maxEventsPerPartition !== undefined ? { maxEventsPerPartition: options.eventHub.maxEventsPerPartition } : {}),
      ...(options.eventHub?.maxBytesPerPartition !== undefined ? { maxBytesPerPartition: options.eventHub.maxBytesPerPartition } : {}),
    }, eventsJournal, log);
    const hub = new EdgeHub({
      hubHostName,
      deviceId,
      tls: tlsPair,
      port: options.mqttPort ?? 8883,
      portFallback: options.mqttPort === undefined,
      host,
      moduleKey,
      routes,
      timeToLiveSecs: spec.storeAndForward.timeToLiveSecs,
      storeLimits: {
        ...(options.limits?.storeMaxMessages !== undefined ? { maxMessages: options.limits.storeMaxMessages } : {}),
        ...(options.limits?.storeMaxBytes !== undefined ? { maxBytes: options.limits.storeMaxBytes } : {}),
      },
      ...(forwarding ? { forwarding } : {}),
      upstream: events,
      log: hubLog,
    });
    const mqttPort = await hub.start();
    closers.push(() => hub.stop());

    const workload = await startWorkloadApi({
      listen: options.workloadSocket ? { socketPath: resolve(options.workloadSocket) } : { host: '127.0.0.1', port: options.workloadPort ?? 0 },
      trustBundlePem: state.caCertPem,
      modules: (id: string) => {
        const ident = state.moduleIdentity(id, false);
        return ident ? { generationId: ident.generationId, key: ident.key } : undefined;
      },
      masterSecret: state.workloadSecret,
    });
    closers.push(() => workload.close());

    const eventHub = new EventHubEndpoint({
      tls: tlsPair,
      host,
      port: options.amqpPort ?? 5671,
      portFallback: options.amqpPort === undefined,
      entity: eventHubName({ hubHostName }),
      hubKey: state.hubKey,
      store: events,
      // Modules over AMQP share the port, as on IoT Hub (told apart by token audience and link address).
      modules: new AmqpModules(hub, { deviceId, hubHostName, log: hubLog }),
      log,
    });
    const amqpPort = await eventHub.start();
    hub.serveAmqp((stream) => eventHub.acceptStream(stream));
    closers.push(() => eventHub.stop());

    const upstreamListeners = new Set<(m: UpstreamMessage) => void>();
    hub.on('upstream', (m: UpstreamMessage) => {
      events.append(m);
      for (const l of upstreamListeners) l(m);
    });
    const onUpstream = (l: (m: UpstreamMessage) => void): (() => void) => {
      upstreamListeners.add(l);
      return () => upstreamListeners.delete(l);
    };

    const supervisor = new Supervisor({
      log: (line: string) => log(line),
      ...(options.moduleOutput ? { output: options.moduleOutput } : {}),
      ...(options.backoff ? { backoff: options.backoff } : {}),
    });
    closers.push(() => supervisor.stopAll());
    const system = attachEdgeAgent({ hub, supervisor, logs, spec: () => spec, deviceId, iotHub: hubHostName, ca: state.caCertPem });
    const blobs = new BlobTarget(join(state.dir, 'blobs'), blobKey(state.hubKey));
    let ownSpec = spec;
    let appliedSpec: DeploymentSpec | undefined = spec;
    const registry = new SimRegistry({
      deviceId,
      twins: hub.twins,
      moduleIds: () => [...SYSTEM_MODULES, ...new Set([...spec.modules.map((m) => m.name), ...(options.extraModules ?? [])])],
      connected: (m) => isSystemModule(m) || hub.isConnected(m),
      generationId: (m) => state.moduleIdentity(m, false)?.generationId,
      redeploy: () => redeploy(),
    });
    const moduleTwin = (m: string): JsonObject => hub.twins.serviceView(m, isSystemModule(m) || hub.isConnected(m));
    // The device twin and configurations as they were; what they target is what runs.
    if (saved?.deviceTwins?.length) registry.deviceTwins.restore(saved.deviceTwins);
    for (const c of saved?.configurations ?? []) registry.configurations.items.set(c.id, c);
    const targeted = registry.effectiveDeployment();
    if (targeted) {
      spec = parseDeployment({ modulesContent: targeted.modulesContent }, { repoRoot, expandVariables: false }, `configuration ${targeted.base}`);
      routes = compileRoutes(spec.routes);
      hub.setRoutes(routes, spec.storeAndForward.timeToLiveSecs);
      appliedSpec = spec;
    }

    const persist = (): void =>
      hubState?.save({ deployment: appliedDeployment, twins: hub.twins.snapshot(), deviceTwins: registry.deviceTwins.snapshot(), configurations: registry.configurations.list() });

    // Apply/redeploy serialised: a second applyConfigurationContent waits for the first.
    let applying: Promise<void> = Promise.resolve();
    let gateway!: GatewayInfo;

    const service = await startServiceApi(
      {
        hubHostName,
        deviceId,
        hubKey: state.hubKey,
        moduleKey,
        knownModule: (m) => isSystemModule(m) || state.moduleIdentity(m, false) !== undefined,
        invokeMethod: (m, name, payload, timeout, connectTimeout) => {
          if (isSystemModule(m)) return system.invoke(m, name, payload);
          if (!state.moduleIdentity(m, false)) return Promise.reject(moduleNotFound(`${deviceId}/${m}`));
          return hub.invokeMethod(m, name, payload, timeout, connectTimeout);
        },
        getTwin: moduleTwin,
        registry: {
          device: () => registry.device(),
          modules: () => registry.modules(),
          module: (m) => registry.module(m),
          deviceTwin: () => registry.deviceTwin(),
          patchDeviceTwin: (patch, ifMatch) => registry.patchDeviceTwin(patch as { tags?: JsonObject; desired?: JsonObject }, ifMatch),
          checkModuleEtag: (m, ifMatch) => registry.checkModuleEtag(m, ifMatch),
          query: (sql, page) => registry.query(sql, moduleTwin, page),
          putConfiguration: (id, body, ifMatch) => registry.putConfiguration(id, body as unknown as ConfigurationInput, ifMatch),
          getConfiguration: (id) => registry.configurations.get(id),
          listConfigurations: () => registry.configurations.list(),
          removeConfiguration: (id, ifMatch) => registry.removeConfiguration(id, ifMatch),
        },
        patchTwin: (m, patch) => {
          // Check both sections first so an over-limit part leaves the twin untouched.
          if (patch.desired) hub.twins.checkPatch('desired', m, patch.desired as JsonObject);
          if (patch.tags) hub.twins.checkPatch('tags', m, patch.tags as JsonObject);
          if (patch.desired) hub.patchDesired(m, patch.desired as JsonObject);
          if (patch.tags) hub.twins.patchTags(m, patch.tags as JsonObject);
          return hub.twins.serviceView(m, hub.isConnected(m));
        },
        applyConfiguration: (content) => applyConfiguration(content),
        onUpstream,
        status: () => ({
          deviceId,
          hubHostName,
          modules: spec.modules.map((m) => ({
            name: m.name,
            image: m.image,
            run: m.run.kind,
            status: m.status,
            connected: hub.isConnected(m.name),
            process: supervisor.status().find((s) => s.name === m.name) ?? null,
          })),
          connected: hub.connectedModules(),
          routes: Object.keys(spec.routes),
          storedForForwarding: hub.pendingForwarding(),
          storeAndForward: hub.forwardingStats(),
        }),
      },
      {
        tls: tlsPair,
        port: options.httpsPort ?? 443,
        portFallback: options.httpsPort === undefined,
        host,
        log,
        // MQTT and AMQP over WebSockets, as IoT Hub and edgeHub serve them (MqttWs, AmqpWs), and the
        // Event Hub-compatible endpoint over WebSockets (@azure/event-hubs with webSocketOptions).
        webSockets: {
          '/$iothub/websocket': { mqtt: (stream) => hub.handleStream(stream), AMQPWSB10: (stream) => eventHub.acceptStream(stream) },
          '/$servicebus/websocket': { AMQPWSB10: (stream) => eventHub.acceptStream(stream) },
        },
        blobTarget: blobs,
        ...(options.limits?.upstreamBufferBytes !== undefined ? { upstreamBufferBytes: options.limits.upstreamBufferBytes } : {}),
      },
    );
    closers.push(() => service.close());

    gateway = { hubHostName, deviceId, mqttPort, httpsPort: service.port, workloadUri: workload.uri, caCertPath: state.caCertPath, host, amqpPort };

    const moduleEnv = (m: string): Record<string, string> => {
      const ident = state.moduleIdentity(m);
      // Per-module storage kept with the simulator's keys (what a bind mount gives a container):
      // deleting the state folder resets identities and module data together.
      const dataDir = join(state.dir, 'modules', m);
      mkdirSync(dataDir, { recursive: true, mode: 0o700 });
      return { ...edgeModuleEnv(gateway, m, ident!.generationId), EDGESIM_MODULE_STATE_DIR: dataDir };
    };

    const startModule = (m: ModuleSpec): void => {
      if (m.run.kind === 'skipped') return; // already reported among the manifest's warnings
      if (m.status !== 'running') return;
      supervisor.start(m.name, {
        command: process.execPath,
        args: [m.run.entry],
        cwd: m.run.kind === 'local' ? m.run.dir : repoRoot,
        env: { ...baseProcessEnv(), ...m.env, ...moduleEnv(m.name) },
        restartPolicy: m.restartPolicy,
      });
    };

    /** Run `newSpec`: stop, restart and start what changed; desired properties become the deployment's (IoT Hub replaces them). */
    async function applySpec(newSpec: DeploymentSpec): Promise<void> {
      const newRoutes = compileRoutes(newSpec.routes);
      const diff = diffDeployments(spec, newSpec);
      for (const w of newSpec.warnings) log(`warning: ${w}`);
      // Compared with the twin, not the previous deployment: a desired patch made since is replaced too.
      const desiredChanged = newSpec.modules.filter((m) => JSON.stringify(hub.twins.get(m.name).desired) !== JSON.stringify(mergePatch({}, m.desired as JsonObject))).map((m) => m.name);
      log(`redeploy: start [${diff.start.join(', ')}] stop [${diff.stop.join(', ')}] restart [${diff.restart.join(', ')}] desired [${desiredChanged.join(', ')}]${diff.routesChanged ? ' routes changed' : ''}`);
      for (const m of newSpec.modules) state.moduleIdentity(m.name);
      const byName = new Map(newSpec.modules.map((m) => [m.name, m]));
      await Promise.all([...diff.stop, ...diff.restart].map((n) => supervisor.stop(n).catch(() => {})));
      for (const n of diff.stop) hub.disconnect(n);
      spec = newSpec;
      routes = newRoutes;
      hub.setRoutes(routes, spec.storeAndForward.timeToLiveSecs);
      for (const n of desiredChanged) hub.setDesired(n, (byName.get(n)?.desired ?? {}) as JsonObject);
      system.deployed(newSpec);
      for (const m of newSpec.modules) if (diff.start.includes(m.name) || diff.restart.includes(m.name)) startModule(m);
    }

    /** Serialised: a second deployment waits for the first. */
    function serialised(run: () => Promise<void>): Promise<void> {
      const next = applying.then(run);
      applying = next.catch(() => {});
      return next;
    }

    /** What the device runs: the highest-priority configuration targeting it (plus layers), else its own deployment. */
    function redeploy(): Promise<void> {
      return serialised(async () => {
        persist(); // configurations and device tags are on disk before the change is acknowledged
        const eff = registry.effectiveDeployment();
        const target = eff ? parseDeployment({ modulesContent: eff.modulesContent }, { repoRoot, expandVariables: false }, `configuration ${eff.base}${eff.layers.length ? ` + layers ${eff.layers.join(', ')}` : ''}`) : ownSpec;
        if (target !== appliedSpec) await applySpec(target);
        appliedSpec = target;
      });
    }

    /**
     * applyConfigurationContent: the device's own deployment, run now. Configurations that target
     * the device take over again when they (or the device's tags) change.
     */
    async function applyConfiguration(content: { modulesContent: Record<string, unknown> }): Promise<void> {
      const own = parseDeployment(content, { repoRoot, expandVariables: false }, 'configuration content');
      await serialised(async () => {
        await applySpec(own);
        ownSpec = own;
        appliedSpec = own;
      });
      // What is saved is the device's own deployment; configurations re-target it when they are applied again.
      appliedDeployment = { modulesContent: content.modulesContent };
      persist();
    }


    // Twins are restored, or seeded from the manifest, before any module connects; from then on
    // every change is on disk before it is acknowledged.
    if (saved) hub.twins.restore(saved.twins);
    for (const m of spec.modules) if (!saved || !hub.twins.has(m.name)) hub.twins.setDesired(m.name, m.desired as JsonObject);
    hub.twins.onChange = persist;
    registry.deviceTwins.onChange = persist;
    system.deployed(spec);
    persist();
    if (options.writeState !== false) {
      state.writeRuntime({
        pid: process.pid,
        startedAt: new Date().toISOString(),
        hubHostName,
        deviceId,
        mqttPort,
        httpsPort: service.port,
        workloadUri: workload.uri,
        host,
        amqpPort,
        ...(manifestPath ? { manifest: manifestPath } : {}),
        modules: spec.modules.map((m) => m.name),
      });
      closers.unshift(async () => state.clearRuntime());
    }
    if (options.runModules !== false) for (const m of spec.modules) startModule(m);

    let stopped: Promise<void> | undefined;
    return {
      ...gateway,
      stateDir: state.dir,
      gatewayHostName: gatewayHostName(gateway),
      serviceConnectionString: serviceConnectionString(gateway, state.hubKey),
      eventHubConnectionString: eventHubConnectionString(gateway, state.hubKey)!,
      eventHubName: eventHubName(gateway),
      eventHubReceivers: () => eventHub.receivers(),
      hub,
      supervisor,
      spec: () => spec,
      moduleConnectionString: (m) => moduleConnectionString(gateway, m, state.moduleIdentity(m)!.keyBase64),
      moduleEnv,
      applyConfiguration,
      onUpstream,
      blobContainerSasUrl: (container) => containerSasUrl(`https://${serviceHost(gateway)}`, container, blobKey(state.hubKey)),
      blobContainerDir: (container) => blobs.containerDir(container),
      stop: () => (stopped ??= closeAll()),
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
