/** `enclave-edge device init | import-cert | show`: the device attestation identity in a root of trust. */
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import type { Command } from 'commander';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import type { RootOfTrust } from '@enclave-edge/trust';
import { emit, action, warn, type GlobalOptions } from '../output.js';

interface RotOptions {
  rot?: string;
  pkcs11Uri?: string;
  tcti?: string;
  stateDir?: string;
}

function addRotOptions(cmd: Command): Command {
  return cmd
    .option('--rot <kind>', 'root of trust: software | pkcs11 | workload | tpm (default: $ENCLAVE_EDGE_ROT or software)')
    .option('--pkcs11-uri <uri>', 'PKCS#11 URI of the token (default: $ENCLAVE_EDGE_PKCS11_URI); PIN via pin-source=file:… or $PKCS11_PIN')
    .option('--tcti <tcti>', 'with --rot tpm: which TPM, e.g. device:/dev/tpmrm0 or swtpm:host=127.0.0.1,port=2321 (default: $ENCLAVE_EDGE_TPM_TCTI or device:/dev/tpmrm0)')
    .option('--state-dir <dir>', 'state directory (default: $ENCLAVE_EDGE_STATE_DIR or ./.enclave-edge)');
}

// The trust package (PKCS#11, X.509) is imported by the actions only, so `device --help` stays quick.
const trust = () => import('@enclave-edge/trust');

async function openRoot(o: RotOptions): Promise<RootOfTrust> {
  const { createRootOfTrust, rootOfTrustConfigFromEnv } = await trust();
  const env = { ...process.env };
  if (o.rot) env.ENCLAVE_EDGE_ROT = o.rot;
  if (o.pkcs11Uri) env.ENCLAVE_EDGE_PKCS11_URI = o.pkcs11Uri;
  if (o.tcti) env.ENCLAVE_EDGE_TPM_TCTI = o.tcti;
  if (o.tcti && env.ENCLAVE_EDGE_ROT !== 'tpm') throw new EnclaveEdgeError('BAD_PARAMETERS', '--tcti needs --rot tpm');
  if (o.stateDir) env.ENCLAVE_EDGE_STATE_DIR = o.stateDir;
  if (env.ENCLAVE_EDGE_ROT === 'pkcs11' && !env.ENCLAVE_EDGE_PKCS11_URI) {
    throw new EnclaveEdgeError('CONFIG_INVALID', '--rot pkcs11 needs the token: --pkcs11-uri pkcs11:token=… (or $ENCLAVE_EDGE_PKCS11_URI)');
  }
  const log = (level: string, message: string) => {
    if (level === 'warn' || level === 'error') warn(message);
  };
  return createRootOfTrust(rootOfTrustConfigFromEnv(env, { stateDir: '.enclave-edge' }), log);
}

async function withRoot<T>(o: RotOptions, fn: (root: RootOfTrust) => Promise<T>): Promise<T> {
  const root = await openRoot(o);
  try {
    return await fn(root);
  } finally {
    await root.close();
  }
}

export function register(program: Command): void {
  const device = program.command('device').description('device attestation identity (key in the root of trust, certificate chain)');

  addRotOptions(
    device
      .command('init')
      .description('create the attestation key in the root of trust and a self-signed development CA + device certificate, or a CSR')
      .option('--csr <file>', 'write a CSR for an operator CA instead of self-signing (then: device import-cert)')
      .option('--subject <dn>', 'subject of the device certificate / CSR, e.g. "CN=device-42, O=Contoso"')
      .option('--force', 'replace an existing device certificate chain'),
  ).action(
    action(async (o: RotOptions & { csr?: string; subject?: string; force?: boolean }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      const { initDeviceIdentity } = await trust();
      const r = await withRoot(o, (root) =>
        initDeviceIdentity({ root, mode: o.csr ? 'csr' : 'self-signed', subject: o.subject, csrPath: o.csr, force: o.force }),
      );
      emit(g, { ...r, caPem: undefined, csrPem: undefined }, () =>
        r.mode === 'csr'
          ? `attestation key ready in root of trust "${r.rot}" (SPKI sha256 ${r.attestationKeySpkiSha256})\nCSR written to ${r.csrPath} for "${r.subject}"\nhave your CA sign it, then: enclave-edge device import-cert <chain.pem>`
          : `attestation key ready in root of trust "${r.rot}" (SPKI sha256 ${r.attestationKeySpkiSha256})\n` +
            `device certificate chain: ${r.chainPath}\n` +
            `development CA (give it to verifiers as --trust): ${r.caPath}\n` +
            'the CA key was used once and discarded; this is a development identity, NOT FOR PRODUCTION',
      );
    }),
  );

  addRotOptions(
    device.command('import-cert <chain>').description('store the certificate chain (PEM, leaf first) an operator CA issued for the CSR'),
  ).action(
    action(async (file: string, o: RotOptions, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      let pem: string;
      try {
        pem = readFileSync(file, 'utf8');
      } catch (err) {
        throw new EnclaveEdgeError('ITEM_NOT_FOUND', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`);
      }
      const { importDeviceCertificate } = await trust();
      const r = await withRoot(o, (root) => importDeviceCertificate({ root, chainPem: pem }));
      emit(g, r, () => `stored ${r.subjects.length} certificate(s) in ${r.chainPath}:\n${r.subjects.map((s) => `  ${s}`).join('\n')}`);
    }),
  );

  addRotOptions(device.command('show').description('show the root of trust, what it protects, and the device chain')).action(
    action(async (o: RotOptions, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      const { loadDeviceChain, FreshnessLedger, freshnessOptionsFromEnv } = await trust();
      const info = await withRoot(o, async (root) => {
        const chain = await loadDeviceChain(root);
        const tpm = root.kind === 'tpm' && 'fixedInfo' in root ? await (root as import('@enclave-edge/trust').TpmRootOfTrust).fixedInfo() : undefined;
        const { join } = await import('node:path');
        const counter = root.counter
          ? { name: root.counter.description, ...(await new FreshnessLedger(join(root.stateDir, 'storage'), root.counter, (i) => root.deriveKey(i), freshnessOptionsFromEnv()).inspect()) }
          : undefined;
        const { X509Certificate } = await import('node:crypto');
        return {
          rot: root.kind,
          developmentGrade: root.developmentGrade,
          stateDir: root.stateDir,
          protects: root.protects,
          rollbackProtection: root.rollbackProtection,
          ...(tpm ? { tpm: { ...tpm, pcrSelection: root.quoter?.pcrSelection } } : {}),
          ...(counter ? { rollbackCounter: counter } : {}),
          attestationKeySpkiSha256: createHash('sha256').update(root.attestationSigner.spki).digest('hex'),
          chain: (chain ?? []).map((c) => {
            const x = new X509Certificate(Buffer.from(c, 'base64'));
            return { subject: x.subject.replace(/\n/g, ', '), issuer: x.issuer.replace(/\n/g, ', '), validTo: x.validTo };
          }),
        };
      });
      emit(g, info, (v: typeof info) =>
        [
          `root of trust: ${v.rot}${v.developmentGrade ? ' (DEVELOPMENT-GRADE)' : ''}  state: ${v.stateDir}`,
          `protects: ${v.protects}`,
          `rollback protection: ${v.rollbackProtection}`,
          ...(v.tpm ? [`TPM: ${v.tpm.manufacturer} ${v.tpm.vendor}, firmware ${v.tpm.firmwareVersion}, spec ${v.tpm.specRevision}; quotes ${v.tpm.pcrSelection}`] : []),
          ...(v.rollbackCounter
            ? [
                `rollback counter: ${v.rollbackCounter.name} = ${v.rollbackCounter.counter}; sealed storage: ${v.rollbackCounter.state}` +
                  (v.rollbackCounter.manifestCounter !== undefined ? ` (commit ${v.rollbackCounter.manifestCounter}, ${v.rollbackCounter.stores} store(s), ${v.rollbackCounter.openEpochs} open epoch(s))` : '') +
                  `; increments in the last hour ${v.rollbackCounter.incrementsLastHour} of ${v.rollbackCounter.maxIncrementsPerHour}`,
              ]
            : []),
          `attestation key SPKI sha256: ${v.attestationKeySpkiSha256}`,
          v.chain.length ? `chain:\n${v.chain.map((c) => `  ${c.subject} (issuer ${c.issuer}, until ${c.validTo})`).join('\n')}` : 'chain: none (run `enclave-edge device init`)',
        ].join('\n'),
      );
    }),
  );
}
