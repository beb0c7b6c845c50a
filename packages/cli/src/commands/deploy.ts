/**
 * `enclave-edge deploy generate | apply | at-scale`: iotedgedev-style manifest generation, and
 * deployment to one device or a fleet, on the simulator or a real IoT Hub (same code path).
 */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import type { Command } from 'commander';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import { HubClient, type ConfigurationContent } from '@enclave-edge/hub-client';
import { emit, action, warn, type GlobalOptions } from '../output.js';
import { addTargetOptions, resolveTarget, findSimulator, type TargetOptions } from './hub-target.js';
import { DEV_SIGNER_ID } from '@enclave-edge/bundle/dev-signer';
import { PLATFORMS, findRepoRoot, generateDeploymentFile, isPlatform } from './deploy-manifest.js';

/** Read a generated deployment and refuse templates (unresolved placeholders never reach a device). */
export function readDeployment(path: string): ConfigurationContent {
  let text0: string;
  try {
    text0 = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new EnclaveEdgeError('ITEM_NOT_FOUND', `no deployment file at ${path} (run \`enclave-edge deploy generate\` first?)`);
    throw new EnclaveEdgeError(code === 'EACCES' ? 'ACCESS_DENIED' : 'BAD_PARAMETERS', `cannot read deployment ${path}: ${code ?? (err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text0);
  } catch (err) {
    throw new EnclaveEdgeError('BAD_FORMAT', `${path} is not JSON: ${(err as Error).message}`);
  }
  const content = parsed as { modulesContent?: unknown; content?: { modulesContent?: unknown } };
  const modulesContent = content.modulesContent ?? content.content?.modulesContent;
  if (!modulesContent || typeof modulesContent !== 'object') throw new EnclaveEdgeError('CONFIG_INVALID', `${path} has no modulesContent`);
  const text = JSON.stringify(modulesContent);
  if (text.includes('${') || '$schema-template' in (parsed as object)) {
    throw new EnclaveEdgeError('CONFIG_INVALID', `${path} is a template with unresolved placeholders; run \`enclave-edge deploy generate\` and apply config/deployment.<platform>.json`);
  }
  return { modulesContent: modulesContent as Record<string, unknown> };
}

function collect(v: string, acc: string[]): string[] {
  return [...acc, v];
}

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new EnclaveEdgeError('BAD_PARAMETERS', `priority must be a non-negative integer, got ${v}`);
  return n;
}

export function register(program: Command): void {
  const deploy = program.command('deploy').description('generate deployment manifests and deploy them to a device or a fleet');

  deploy
    .command('generate')
    .description('write config/deployment.<platform>.json from deployment.template.json (placeholders resolved, createOptions split at 512 chars)')
    .option('--platform <platform>', `target platform: ${PLATFORMS.join(' | ')}`, 'amd64')
    .option('--template <file>', 'deployment template', 'deployment.template.json')
    .option('--out-dir <dir>', 'output folder', 'config')
    .option('--trusted-signer <signer>', 'replace ta-runtime policy.trustedSigners: a signer_id, a public key/certificate PEM, or label=either (repeatable)', collect, [])
    .option('--allow-dev-signer', 'allow a policy that trusts the public DEV signer (throwaway test devices only)', false)
    .action(
      action(async (o: { platform: string; template: string; outDir: string; trustedSigner: string[]; allowDevSigner: boolean }, cmd: Command) => {
        if (!isPlatform(o.platform)) throw new EnclaveEdgeError('BAD_PARAMETERS', `unknown platform "${o.platform}"; use ${PLATFORMS.join(', ')}`);
        const repoRoot = findRepoRoot();
        const { path, manifest, trustedSigners } = generateDeploymentFile({
          repoRoot, template: o.template, platform: o.platform, outDir: o.outDir,
          signers: { trustedSigners: o.trustedSigner, allowDevSigner: o.allowDevSigner },
        });
        const modules = Object.keys(((manifest as any).modulesContent.$edgeAgent['properties.desired'].modules ?? {}) as object);
        const devSignerTrusted = Object.values(trustedSigners ?? {}).some((s) => Object.values(s).some((id) => id.toLowerCase() === DEV_SIGNER_ID));
        if (devSignerTrusted) warn('this deployment trusts the public DEV signer (--allow-dev-signer): anyone can sign a TA it runs');
        emit(cmd.optsWithGlobals() as GlobalOptions, { path, platform: o.platform, modules, trustedSigners, devSignerTrusted }, () => `wrote ${relative(process.cwd(), path) || path} (${o.platform}; modules: ${modules.join(', ')})`);
      }),
    );

  addTargetOptions(
    deploy
      .command('apply <deployment>')
      .description('apply a generated deployment to one device (applyConfigurationContent); default target: the running simulator'),
  ).action(
    action(async (file: string, o: TargetOptions, cmd: Command) => {
      const content = readDeployment(file);
      const t = await resolveTarget(o);
      try {
        await t.client.applyConfigurationContent(t.deviceId, content);
        emit(cmd.optsWithGlobals() as GlobalOptions, { applied: file, deviceId: t.deviceId, simulator: t.simulator }, () => `applied ${file} to ${t.deviceId}${t.simulator ? ' (simulator)' : ''}`);
      } finally {
        t.client.close();
      }
    }),
  );

  deploy
    .command('at-scale <deployment>')
    .description('create or update a fleet deployment (an IoT Hub configuration) for devices matching a target condition')
    .requiredOption('--id <id>', 'configuration id')
    .requiredOption('--target-condition <cond>', "e.g. \"tags.environment='prod'\"")
    .option('--priority <n>', 'higher wins when several deployments target a device', positiveInt, 10)
    .option('--label <k=v...>', 'labels')
    .option('--state-dir <dir>', 'simulator state folder', '.edge-sim')
    .option('--hub <name>', 'a real IoT Hub by name (Entra ID via DefaultAzureCredential)')
    .option('--connection-string <cs>', 'an IoT Hub policy connection string')
    .action(
      action(async (file: string, o: { id: string; targetCondition: string; priority: number; label?: string[]; stateDir: string; hub?: string; connectionString?: string }, cmd: Command) => {
        const content = readDeployment(file);
        if (o.hub && o.connectionString) throw new EnclaveEdgeError('BAD_PARAMETERS', 'give either --hub or --connection-string, not both');
        let client: HubClient;
        if (o.connectionString) client = HubClient.fromConnectionString(o.connectionString);
        else if (o.hub) client = await HubClient.fromAzureCredential(o.hub);
        else {
          const sim = findSimulator(o.stateDir);
          client = HubClient.fromConnectionString(sim.connectionString, { ca: readFileSync(sim.caCertPath, 'utf8') });
        }
        const labels = Object.fromEntries((o.label ?? []).map((kv) => {
          const i = kv.indexOf('=');
          if (i <= 0) throw new EnclaveEdgeError('BAD_PARAMETERS', `label "${kv}" is not key=value`);
          return [kv.slice(0, i), kv.slice(i + 1)];
        }));
        try {
          const r = await client.createOrUpdateConfiguration(o.id, { targetCondition: o.targetCondition, priority: o.priority, content, ...(Object.keys(labels).length ? { labels } : {}) });
          emit(cmd.optsWithGlobals() as GlobalOptions, r, () => `configuration ${o.id} created/updated (priority ${o.priority}, target ${o.targetCondition})`);
        } finally {
          client.close();
        }
      }),
    );
}
