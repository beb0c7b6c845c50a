/**
 * Names and text from outside are data: every Object.prototype member name and odd Unicode,
 * used as TA name, command name, JSON key of params and results, log message and log field,
 * storage key and evidence claim, gets a clean answer (the value back, or a named error), and
 * a TA's log text cannot forge a log line. Real TA runtime, real emulated enclave, real storage.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { TARuntime } from '@enclave-edge/ta-runtime';
import { STORAGE_KEY_RE } from '@enclave-edge/trust';
import { verifyEvidence } from '@enclave-edge/attestation';
import { isEnclaveEdgeError } from '@enclave-edge/errors';
import { decodeValue } from '@enclave-edge/protocol';
import { runtimeWithDevice, tempDir } from './helpers.js';
import { hostileName, PROTOTYPE_NAMES } from '../support/hostile-names.js';

const NAMES_TA = `
// Object.fromEntries defines own properties, also for "__proto__", as JSON.parse does.
const keyed = (name) => Object.fromEntries([[name, name], ['ok', true]]);
module.exports = { commands: {
  ping: () => 'pong',
  echo: (ctx, p) => p,
  log: (ctx, p) => { ctx.log.warn(p.message, keyed(p.name)); console.log(p.message); return null; },
  result: (ctx, p) => ({ nested: keyed(p.name), list: [keyed(p.name)] }),
  storage: async (ctx, p) => {
    await ctx.storage.put(p.name, new Uint8Array([7]));
    const back = await ctx.storage.get(p.name);
    const listed = (await ctx.storage.list()).includes(p.name);
    await ctx.storage.delete(p.name);
    return { back: back ? back[0] : -1, listed };
  },
  attest: async (ctx, p) => ({ evidence: await ctx.attest({ nonce: p.nonce, claims: p.claims }) }),
} };`;

const t = tempDir('ee-sec-names-');
const lines: string[] = [];
let rt: TARuntime;
let ca: string;

beforeAll(async () => {
  ({ rt, ca } = await runtimeWithDevice(t.dir, { names: { code: NAMES_TA, attest: true } }, { write: (l: string) => lines.push(l) }));
});
afterAll(async () => {
  await rt?.stop();
  t.cleanup();
});

const req = (over: Record<string, unknown>) => rt.dispatch({ id: randomBytes(4).toString('hex'), op: 'invoke', ta: 'names', command: 'ping', deadline: Date.now() + 10_000, ...over } as never);

/** A named error (EnclaveEdgeError with a code), not a TypeError from a prototype lookup. */
async function cleanRefusal(p: Promise<unknown>): Promise<string> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(isEnclaveEdgeError(e), String(e)).toBe(true);
  expect((e as { code: string }).code).not.toBe('INTERNAL');
  return (e as { code: string }).code;
}

const live = async () => expect(await req({})).toBe('pong');

describe('names from outside through the TA runtime', () => {
  it('an unknown TA or command by any name is ITEM_NOT_FOUND, and the runtime keeps serving', async () => {
    await fc.assert(
      fc.asyncProperty(hostileName(), async (name) => {
        expect(await cleanRefusal(req({ ta: name }))).toBe('ITEM_NOT_FOUND');
        expect(await cleanRefusal(req({ command: name }))).toBe('ITEM_NOT_FOUND');
      }),
      { numRuns: 40, examples: PROTOTYPE_NAMES.map((n) => [n]) },
    );
    await live();
  });

  it('JSON keys of params and results come back as sent, __proto__ included', async () => {
    await fc.assert(
      fc.asyncProperty(hostileName(), async (name) => {
        const params = JSON.parse(`{${JSON.stringify(name)}: {${JSON.stringify(name)}: 1}, "ok": true}`);
        const back = (await req({ command: 'echo', params })) as Record<string, unknown>;
        expect(Object.hasOwn(back, name)).toBe(true);
        expect(JSON.stringify(decodeValue(back))).toBe(JSON.stringify(decodeValue(params))); // same value ($-keys may come back $literal-wrapped)
        const r = (await req({ command: 'result', params: { name } })) as { nested: Record<string, unknown>; list: Array<Record<string, unknown>> };
        expect(Object.hasOwn(r.nested, name) && r.nested[name]).toBe(name);
        expect(Object.hasOwn(r.list[0]!, name) && r.list[0]![name]).toBe(name);
      }),
      { numRuns: 40, examples: PROTOTYPE_NAMES.map((n) => [n]) },
    );
    await live();
  });

  it('storage keys: valid names round-trip, others are BAD_PARAMETERS', async () => {
    await fc.assert(
      fc.asyncProperty(hostileName(), async (name) => {
        if (STORAGE_KEY_RE.test(name)) expect(await req({ command: 'storage', params: { name } })).toEqual({ back: 7, listed: true });
        else expect(await cleanRefusal(req({ command: 'storage', params: { name } }))).toBe('BAD_PARAMETERS');
      }),
      { numRuns: 30, examples: PROTOTYPE_NAMES.map((n) => [n]) },
    );
    await live();
  });

  it('evidence claims with any key are signed as the TA asserted them', async () => {
    for (const name of [...PROTOTYPE_NAMES, 'ünï\u2028', '\u0000']) {
      const nonce = randomBytes(16).toString('hex');
      const claims = JSON.parse(`{${JSON.stringify(name)}: "v", "ok": true}`);
      const { token } = (await rt.dispatch({ id: 'a', op: 'attest', ta: 'names', nonce, claims, deadline: Date.now() + 10_000 } as never)) as { token: string };
      const v = await verifyEvidence(token, { trustAnchors: ca, nonce: Buffer.from(nonce, 'hex'), policy: { allowEmulated: true } });
      expect(v.accepted, name).toBe(true);
      const got = v.accepted ? (v.claims.claims as Record<string, unknown>) : {};
      expect(Object.hasOwn(got, name) && got[name], name).toBe('v');
    }
    await live();
  });
});

describe('TA text in log lines', () => {
  it('a newline in a TA log message, console.log or log field cannot forge a line', async () => {
    const forged = 'x\n<3> 2026-01-01 00:00:00.000 +00:00 [ERR] - ta-runtime: TA loaded {"ta":"billing"}\r\u2028\u001b[1A';
    for (const name of ['__proto__', 'constructor', forged]) {
      lines.length = 0;
      expect(await req({ command: 'log', params: { name, message: forged } })).toBeNull();
      await req({ command: 'log', params: { name: 'marker', message: 'marker' } }); // logs are in order: the marker comes last
      await expect.poll(() => lines.filter((l) => l.includes('marker')).length).toBe(2);
      const fromTa = lines.filter((l) => l.includes('[ERR] - ta-runtime: TA loaded'));
      expect(fromTa.length).toBeGreaterThanOrEqual(2); // the WRN line and the console.log line, escaped
      for (const l of lines) {
        expect(l.endsWith('\n') && l.indexOf('\n') === l.length - 1, JSON.stringify(l)).toBe(true);
        expect(l).toMatch(/^<[2-7]> \d{4}-\d\d-\d\d /);
        expect(l.slice(0, -1)).not.toMatch(/[\u0000-\u001f\u2028]/);
      }
      const withField = lines.find((l) => l.includes('"fields"') && !l.includes('marker'))!;
      const fields = JSON.parse(withField.slice(withField.lastIndexOf(' {"ta"'))).fields as Record<string, unknown>;
      expect(Object.hasOwn(fields, name) && fields[name]).toBe(name);
    }
    await live();
  });
});
