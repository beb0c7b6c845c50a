/** `enclave-edge verify <token> --trust ca.pem`: check attestation evidence like a cloud verifier would. */
import { readFileSync, existsSync } from 'node:fs';
import type { Command } from 'commander';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import type { Verdict } from '@enclave-edge/attestation';
import { emit, action, type GlobalOptions } from '../output.js';

export function readText(what: string, path: string): string {
  try {
    return readFileSync(path === '-' ? 0 : path, 'utf8');
  } catch (err) {
    throw new EnclaveEdgeError('ITEM_NOT_FOUND', `cannot read ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
}

/** The token itself, a file holding it, or `-` for stdin (a JSON `{ "token": … }` / `{ "evidence": … }` body works too). */
function loadToken(arg: string): string {
  let text = arg === '-' || (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(arg) && existsSync(arg)) ? readText('token', arg) : arg;
  text = text.trim();
  // A saved human `invoke … attest` answer: `status 200` on the first line, the payload after it.
  const human = /^status \d{3}\n/.exec(text);
  if (human) text = text.slice(human[0].length).trim();
  if (text.startsWith('{')) {
    try {
      const j = JSON.parse(text) as Record<string, unknown>;
      const p = j.payload as Record<string, unknown> | undefined; // `invoke … attest --json` saves {status, payload: {token}}
      const t = j.token ?? j.evidence ?? p?.token ?? p?.evidence;
      if (typeof t === 'string') return t;
    } catch { /* falls through to the verifier's malformed verdict */ }
  }
  return text;
}

function human(v: Verdict): string {
  const lines = [v.accepted ? 'ACCEPTED' : `REJECTED (${v.reason}): ${v.message}`];
  if (v.accepted) {
    lines.push(`chain: ${v.chain.join(' <- ')}`);
    if (v.platform) {
      lines.push(`TPM quote: verified (signed by the certified attestation key, bound to the nonce); reset count ${v.platform.resetCount}, restart count ${v.platform.restartCount}, firmware ${v.platform.firmwareVersion}`);
      lines.push(`PCRs: ${Object.entries(v.platform.pcrs).map(([k, x]) => `${k}=${x.slice(0, 16)}…`).join(' ')}`);
    }
    for (const w of v.warnings) lines.push(`warning: ${w}`);
  }
  if (v.claims) lines.push(`claims: ${JSON.stringify(v.claims, null, 2)}`);
  return lines.join('\n');
}

/** `--policy <file>` JSON with `--allow-emulated` / `--allow-debug` on top: the verifier policy input both `verify` and `invoke --confidential` use. */
export function policyInput(o: { policy?: string; allowEmulated?: boolean; allowDebug?: boolean }): Record<string, unknown> {
  let policy: Record<string, unknown> = {};
  if (o.policy) {
    try {
      policy = JSON.parse(readText('policy', o.policy));
    } catch (err) {
      if (err instanceof EnclaveEdgeError) throw err;
      throw new EnclaveEdgeError('CONFIG_INVALID', `policy ${o.policy} is not valid JSON`);
    }
  }
  if (o.allowEmulated) policy.allowEmulated = true;
  if (o.allowDebug) policy.allowDebug = true;
  return policy;
}

export function register(program: Command): void {
  program
    .command('verify <token>')
    .description('verify attestation evidence (EAT JWT, a file holding it, or - for stdin): signature, chain, freshness, nonce, policy')
    .requiredOption('--trust <pem>', 'trust anchor certificate(s) (PEM), e.g. the device CA from `device init`')
    .option('--nonce <nonce>', 'the nonce you sent (hex or base64url)')
    .option('--policy <file>', 'policy JSON: allowedMeasurements, allowedSigners, productIds, minSecurityVersion, allowDebug, allowEmulated, allowedRootsOfTrust, pcrs ({"sha256:7":"<hex>"}: reference values the TPM quote must show), maxAgeSeconds')
    .option('--allow-emulated', 'accept evidence from emulated enclaves (development)')
    .option('--allow-debug', 'accept debug TAs (development)')
    .action(
      action(async (tokenArg: string, o: { trust: string; nonce?: string; policy?: string; allowEmulated?: boolean; allowDebug?: boolean }, cmd: Command) => {
        const g = cmd.optsWithGlobals<GlobalOptions>();
        // The verifier's own modules only: the package index also loads the development CA (X.509).
        const [{ verifyEvidence }, { parsePolicy }] = await Promise.all([import('@enclave-edge/attestation/verify'), import('@enclave-edge/attestation/policy')]);
        const parsed = parsePolicy(policyInput(o));
        const v = await verifyEvidence(loadToken(tokenArg), { trustAnchors: readText('trust anchors', o.trust), nonce: o.nonce, policy: parsed });
        // A rejection keeps the CLI's failure shape too: `error` beside the verdict with --json.
        const rejected = v.accepted ? undefined : { code: v.code, message: `evidence rejected (${v.reason}): ${v.message}` };
        emit(g, rejected ? { ...v, error: rejected } : v, human);
        if (rejected) {
          process.stderr.write(`enclave-edge: ${rejected.code}: ${rejected.message}\n`);
          process.exitCode = 1;
        }
      }),
    );
}
