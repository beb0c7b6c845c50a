/** `enclave-edge ta …`: create, build, sign (PEM, PKCS#11 or offline), inspect, verify and run (ta-run.ts) TA bundles. */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { writeFileAtomicSync } from '@enclave-edge/durable-files';
import { basename, dirname, join, relative } from 'node:path';
import type { Command } from 'commander';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import {
  admit, admittedOrThrow, attachSignature, certificateChainFromPem, computeSignerId, digestBundle, generateSigningKey, inspectBundle, isPkcs11Uri,
  openSigner, signBundle, spkiFromPem, verifyBundle, type BundleInspection, type SignerKeyInfo, type TAManifest,
} from '@enclave-edge/bundle';
import { runtimePolicySchema } from '@enclave-edge/protocol/desired';
import { action, emit, type GlobalOptions } from '../output.js';
import { registerRun, signerIdsFrom } from './ta-run.js';
import { registerDeploy } from './ta-deploy.js';
import { cliCommand } from './cli-hint.js';

type Opts = GlobalOptions & Record<string, unknown>;
const optsOf = (cmd: Command) => cmd.optsWithGlobals() as Opts;

function readBytes(path: string, what: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (e) {
    throw new EnclaveEdgeError('ITEM_NOT_FOUND', `cannot read ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}

/** A PEM file named on the command line; a missing one is ITEM_NOT_FOUND naming the file. */
const readPem = (path: string, what: string): string => new TextDecoder().decode(readBytes(path, what));

/** --cert <pem>: the certificate chain (leaf first) for the x5c header. */
const certChainOption = (opts: Opts): { certificateChain?: string[] } =>
  typeof opts.cert === 'string' ? { certificateChain: certificateChainFromPem(readPem(opts.cert, 'certificate chain')) } : {};

/** Replace a file atomically and durably, so an interrupted sign never leaves half a bundle. */
function writeAtomic(path: string, data: Uint8Array | string, mode = 0o644): void {
  try {
    writeFileAtomicSync(path, data, mode);
  } catch (err) {
    // Name the file the user asked for, not the temp file, with a taxonomy code.
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new EnclaveEdgeError('ITEM_NOT_FOUND', `cannot write ${path}: folder ${dirname(path)} does not exist`);
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') throw new EnclaveEdgeError('ACCESS_DENIED', `cannot write ${path}: ${code}`);
    throw new EnclaveEdgeError('INTERNAL', `cannot write ${path}: ${code ?? (err as Error).message}`);
  }
}

function keyInfoFrom(opts: Opts): SignerKeyInfo {
  if (typeof opts.cert === 'string') {
    const pem = readPem(opts.cert, 'certificate chain');
    return { spki: spkiFromPem(pem), certificateChain: certificateChainFromPem(pem) };
  }
  if (typeof opts.publicKey === 'string') return { spki: spkiFromPem(readPem(opts.publicKey, 'public key')) };
  throw new EnclaveEdgeError('BAD_PARAMETERS', 'name the signing key: --public-key <pem> or --cert <certificate chain pem>');
}

const show = (p: string) => relative(process.cwd(), p) || p;

/** A policy JSON file, parsed (defaults filled) as ta-runtime parses its desired `policy`. */
function policyFile(path: string) {
  let raw: unknown;
  try {
    raw = JSON.parse(readPem(path, 'policy'));
  } catch (e) {
    if (e instanceof EnclaveEdgeError) throw e;
    throw new EnclaveEdgeError('BAD_FORMAT', `policy ${path} is not JSON: ${(e as Error).message}`);
  }
  const r = runtimePolicySchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new EnclaveEdgeError('CONFIG_INVALID', `policy ${path}: ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`);
  }
  return r.data;
}

function describeManifest(m: TAManifest): string[] {
  return [
    `name           ${m.name} ${m.version} (${m.runtime})`,
    `uuid           ${m.uuid}`,
    `productId      ${m.productId}    securityVersion ${m.securityVersion}`,
    `limits         heap ${m.limits.heapMb} MB, stack ${m.limits.stackKb} KB, concurrency ${m.limits.maxConcurrency}, call timeout ${m.limits.callTimeoutMs} ms`,
    `session        ${Object.entries(m.session).map(([k, v]) => `${k}=${v}`).join(', ')}`,
    `hostCalls      ${m.hostCalls.length ? m.hostCalls.join(', ') : '(none)'}`,
    ...(m.description ? [`description    ${m.description}`] : []),
  ];
}

const DEBUG_BANNER = '!!! DEBUG TA — debuggable, carries a source map; strict policies refuse it. Not for production. !!!';

function renderInspection(i: BundleInspection): string {
  const lines = [
    ...(i.manifest.debug ? [DEBUG_BANNER, ''] : []),
    ...describeManifest(i.manifest),
    `debug          ${i.manifest.debug ? 'YES (DEBUG)' : 'no'}`,
    `measurement    ${i.measurement}`,
    `signer_id      ${i.signerId ?? '(unsigned)'}`,
    `signature      ${i.signed ? (i.verification.ok ? 'valid (ES256)' : `INVALID — ${i.verification.code}: ${i.verification.reason}`) : 'none (unsigned)'}`,
    ...(i.certificateChain ? [`x5c            ${i.certificateChain.length} certificate(s)`] : []),
    `sizes          total ${i.sizes.total} B: manifest ${i.sizes.manifest}, code ${i.sizes.code}, source map ${i.sizes.sourceMap}, signature ${i.sizes.signature}`,
  ];
  return lines.join('\n');
}

export function register(program: Command): void {
  const ta = program.command('ta').description('Trusted applications: scaffold, build, sign, inspect, verify, run locally');

  ta.command('new <name>')
    .description('create a TA project (ta.json, src/index.ts, a test) that builds and passes its test')
    .option('--dir <dir>', 'where to create it (default ./<name>)')
    .action(action(async (name: string, _o: unknown, cmd: Command) => {
      const opts = optsOf(cmd);
      const { newTA } = await import('@enclave-edge/ta-toolchain'); // esbuild/asc only when building
      const r = newTA(name, typeof opts.dir === 'string' ? opts.dir : undefined);
      const next = r.standalone
        ? [`Next: cd ${show(r.dir)} && npm install --offline   (links this enclave-edge installation; no registry needed)`,
            '      npm run build && npm test && npm run deploy   (deploy: to the running local edge, signed with key.pem from `npm run keygen`)']
        : [`Next: ${cliCommand()} ta keygen --out ${show(join(r.dir, 'key.pem'))}`,
            `      ${cliCommand()} ta deploy ${show(r.dir)} --key ${show(join(r.dir, 'key.pem'))} --trust-signer   (builds, signs, loads it into the running local edge)`];
      emit(opts, r, () => [`Created TA "${name}" in ${show(r.dir)} (uuid ${r.uuid})`, ...r.files.map((f) => `  ${f}`), '', ...next].join('\n'));
    }));

  ta.command('build [dir]')
    .description('bundle a TA (TypeScript via esbuild, AssemblyScript via asc) into dist/<name>.tab')
    .option('--debug', 'debug build: manifest debug=true and a source map section')
    .option('--out <file>', 'output file (default <dir>/dist/<name>.tab)')
    .option('--key <key>', 'sign right away: PEM key file or pkcs11: URI')
    .option('--cert <pem>', 'with --key: certificate chain for the x5c header')
    .action(action(async (dir: string | undefined, _o: unknown, cmd: Command) => {
      const opts = optsOf(cmd);
      if (typeof opts.cert === 'string' && typeof opts.key !== 'string') throw new EnclaveEdgeError('BAD_PARAMETERS', '--cert goes with --key (it names the signing key\'s certificate chain)');
      const opened = typeof opts.key === 'string' ? await openSigner(opts.key, certChainOption(opts)) : undefined;
      try {
        const { buildTA } = await import('@enclave-edge/ta-toolchain');
        const r = await buildTA(dir ?? '.', { ...(opts.debug ? { debug: true } : {}), ...(typeof opts.out === 'string' ? { outFile: opts.out } : {}), ...(opened ? { signer: opened.signer } : {}) });
        const out = { outFile: r.outFile, name: r.manifest.name, version: r.manifest.version, runtime: r.manifest.runtime, debug: r.manifest.debug, measurement: r.measurement, signed: r.signed, sizes: r.sizes };
        emit(opts, out, () => [
          ...(r.manifest.debug ? [DEBUG_BANNER] : []),
          `Built ${show(r.outFile!)} — ${r.manifest.name} ${r.manifest.version} (${r.manifest.runtime}, ${r.manifest.debug ? 'DEBUG' : 'release'}, ${r.signed ? 'signed' : 'unsigned'})`,
          `measurement    ${r.measurement}`,
          `sizes          code ${r.sizes.code} B, source map ${r.sizes.sourceMap} B, total ${r.sizes.total} B`,
          ...(r.signed ? [] : ['', `Next: ${cliCommand()} ta sign ${show(r.outFile!)} --key <key.pem | pkcs11:…>`]),
        ].join('\n'));
      } finally {
        await opened?.close();
      }
    }));

  ta.command('keygen')
    .description('create a P-256 (ES256) signing key: a PEM file, or inside a PKCS#11 token')
    .requiredOption('--out <key>', 'key.pem to write (mode 0600), or pkcs11:token=…;object=<label> to generate in the token')
    .option('--force', 'overwrite an existing key file')
    .action(action(async (_o: unknown, cmd: Command) => {
      const opts = optsOf(cmd);
      const out = opts.out as string;
      if (isPkcs11Uri(out)) {
        const { generatePkcs11SigningKey } = await import('@enclave-edge/bundle/signers/pkcs11');
        const r = await generatePkcs11SigningKey(out);
        emit(opts, { kind: 'pkcs11', token: r.tokenLabel, object: r.label, signerId: r.signerId }, () =>
          [`Generated a non-extractable P-256 key "${r.label}" in token "${r.tokenLabel}"`, `signer_id      ${r.signerId}`].join('\n'));
        return;
      }
      if (existsSync(out) && !opts.force) throw new EnclaveEdgeError('CONFLICT', `${out} exists; pass --force to overwrite`);
      const k = generateSigningKey();
      const pubFile = out.replace(/(\.pem)?$/, '.pub.pem');
      writeAtomic(out, k.privateKeyPem, 0o600);
      writeAtomic(pubFile, k.publicKeyPem);
      emit(opts, { kind: 'pem', keyFile: out, publicKeyFile: pubFile, signerId: k.signerId }, () =>
        [`Wrote ${out} (private, mode 0600) and ${pubFile}`, `signer_id      ${k.signerId}`, 'Keep the private key out of source control; production keys belong in an HSM (--out pkcs11:…).'].join('\n'));
    }));

  ta.command('sign <bundle>')
    .description('sign a bundle with ES256 (JWS); the PIN comes from the URI (pin-source=file:…) or PKCS11_PIN')
    .requiredOption('--key <key>', 'PEM key file or pkcs11:token=…;object=… URI')
    .option('--cert <pem>', 'certificate chain (leaf first) to put in the x5c header')
    .option('--out <file>', 'write here instead of replacing the bundle')
    .action(action(async (bundlePath: string, _o: unknown, cmd: Command) => {
      const opts = optsOf(cmd);
      const bytes = readBytes(bundlePath, 'bundle');
      const opened = await openSigner(opts.key as string, certChainOption(opts));
      try {
        const signed = await signBundle(bytes, opened.signer);
        const v = verifyBundle(signed, { trustedSigners: [computeSignerId(opened.signer.spki)] });
        const out = typeof opts.out === 'string' ? opts.out : bundlePath;
        writeAtomic(out, signed);
        emit(opts, { bundle: out, measurement: v.measurement, signerId: v.signerId, keyKind: opened.kind }, () =>
          [`Signed ${show(out)} with ${opened.kind === 'pkcs11' ? 'a PKCS#11 token key' : 'a PEM key'}`, `measurement    ${v.measurement}`, `signer_id      ${v.signerId}`].join('\n'));
      } finally {
        await opened.close();
      }
    }));

  ta.command('digest <bundle>')
    .description('offline signing, step 1: print what to sign (the JWS signing input and its SHA-256)')
    .option('--public-key <pem>', 'public key of the signing key (goes into the JWS header)')
    .option('--cert <pem>', 'or: certificate chain of the signing key (x5c header)')
    .option('--out <file>', 'write the signing input (the bytes to sign with ES256) to this file')
    .action(action(async (bundlePath: string, _o: unknown, cmd: Command) => {
      const opts = optsOf(cmd);
      const d = digestBundle(readBytes(bundlePath, 'bundle'), keyInfoFrom(opts));
      if (typeof opts.out === 'string') writeAtomic(opts.out, d.signingInput);
      emit(opts, { ...d, ...(typeof opts.out === 'string' ? { signingInputFile: opts.out } : {}) }, () => [
        `measurement    ${d.measurement}`,
        `sha256         ${d.sha256}   (sign this digest with a raw-ECDSA HSM, CKM_ECDSA)`,
        typeof opts.out === 'string'
          ? `signing input  written to ${opts.out} — e.g. openssl dgst -sha256 -sign key.pem -out sig.der ${opts.out}`
          : `signing input  ${d.signingInput}`,
        '',
        `Then: ${cliCommand()} ta attach-signature ${bundlePath} --signature sig.der ${typeof opts.cert === 'string' ? `--cert ${opts.cert}` : `--public-key ${String(opts.publicKey)}`}`,
      ].join('\n'));
    }));

  ta.command('attach-signature <bundle>')
    .description('offline signing, step 2: attach an ES256 signature (raw r||s or DER, binary/base64/hex) over the digest')
    .requiredOption('--signature <file>', 'the signature file')
    .option('--cert <pem>', 'certificate chain given to `ta digest`')
    .option('--public-key <pem>', 'or: public key given to `ta digest`')
    .option('--out <file>', 'write here instead of replacing the bundle')
    .action(action(async (bundlePath: string, _o: unknown, cmd: Command) => {
      const opts = optsOf(cmd);
      const key = keyInfoFrom(opts);
      const signed = attachSignature(readBytes(bundlePath, 'bundle'), readBytes(opts.signature as string, 'signature'), key);
      const v = verifyBundle(signed, { trustedSigners: [computeSignerId(key.spki)] });
      const out = typeof opts.out === 'string' ? opts.out : bundlePath;
      writeAtomic(out, signed);
      emit(opts, { bundle: out, measurement: v.measurement, signerId: v.signerId }, () =>
        [`Signature attached and verified: ${show(out)}`, `measurement    ${v.measurement}`, `signer_id      ${v.signerId}`].join('\n'));
    }));

  ta.command('inspect <bundle>')
    .description('show manifest, measurement, signer_id, sizes and signature status (DEBUG TAs are marked loudly)')
    .action(action(async (bundlePath: string, _o: unknown, cmd: Command) => {
      const opts = optsOf(cmd);
      const i = inspectBundle(readBytes(bundlePath, 'bundle'));
      emit(opts, i, renderInspection);
    }));

  ta.command('verify <bundle>')
    .description('admit the bundle as ta-runtime would: format, measurement, signature by a trusted signer, then the policy (--policy, or debug allowed unless --no-debug); non-zero exit with the reason')
    .option('--signer <signer>', 'trusted signer: signer_id hex or PEM public key/certificate (repeatable)', (v: string, acc: string[] = []) => [...acc, v])
    .option('--policy <file>', "ta-runtime's policy JSON (desired properties' `policy`): check against the device's rules; --signer adds signers")
    .option('--no-debug', 'refuse debug TAs (without --policy)')
    .action(action(async (bundlePath: string, _o: unknown, cmd: Command) => {
      const opts = optsOf(cmd);
      const signers = Array.isArray(opts.signer) ? signerIdsFrom(opts.signer as string[]) : [];
      const given = typeof opts.policy === 'string' ? policyFile(opts.policy) : runtimePolicySchema.parse({ allowDebug: opts.debug !== false, allowEmulated: true });
      const policy = { ...given, trustedSigners: { ...given.trustedSigners, ...Object.fromEntries(signers.map((id, i) => [`signer${i}`, id])) } };
      if (Object.keys(policy.trustedSigners).length === 0) {
        throw new EnclaveEdgeError('BAD_PARAMETERS', 'name the trusted signer: --signer <signer_id or PEM public key> (or a --policy with trustedSigners)');
      }
      const v = admittedOrThrow(await admit(readBytes(bundlePath, 'bundle'), policy, { backendKind: 'emulated', origin: 'desired' }));
      const out = { ok: true, name: v.manifest.name, version: v.manifest.version, debug: v.manifest.debug, measurement: v.measurement, signerId: v.signerId, size: v.size };
      emit(opts, out, () =>
        [`OK ${v.manifest.name} ${v.manifest.version}${v.manifest.debug ? ' (DEBUG)' : ''}: format, measurement and signature verified, signer trusted, policy passed`, `measurement    ${v.measurement}`, `signer_id      ${v.signerId}`].join('\n'));
    }));

  registerRun(ta);
  registerDeploy(ta);
}
