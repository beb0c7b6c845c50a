/**
 * Sealed readings end to end in the simulator with the real SDK: host-module's pipeline with a
 * recipient key makes sensor-signer sign and HPKE-seal each reading inside the enclave; a unique
 * marker in the reading never appears on `$upstream`, yet the example consumer
 * (examples/sealed-readings/consumer.ts, the unmodified @azure/event-hubs client on the Event
 * Hub-compatible endpoint) opens it and verifies the signature. Fail closed: a pipeline whose
 * TA answers in plaintext sends nothing, and a bad recipient key is refused and reported.
 */
import { execFile } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import device from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';
import { eventually, repoRoot, startE2E, type E2E } from './harness.js';

let t: E2E;
let fuzzer: InstanceType<typeof device.ModuleClient>;
const dir = mkdtempSync(join(tmpdir(), 'ee-sealed-'));
const { publicKey, privateKey } = generateKeyPairSync('x25519');
const recipient = { kty: 'OKP', crv: 'X25519', x: publicKey.export({ format: 'jwk' }).x! };
const RECIPIENT_FILE = join(dir, 'recipient.private.jwk');
const SIGNER_FILE = join(dir, 'signer.jwk');

beforeAll(async () => {
  writeFileSync(RECIPIENT_FILE, JSON.stringify(privateKey.export({ format: 'jwk' })), { mode: 0o600 });
  t = await startE2E((m) => {
    m.modulesContent.$edgeAgent['properties.desired'].modules.SimulatedTemperatureSensor.status = 'stopped';
    const routes = m.modulesContent.$edgeHub['properties.desired'].routes;
    for (const input of ['sealed', 'sealedPlain', 'sealedBadKey']) routes[`fuzz_${input}`] = `FROM /messages/modules/fuzzer/outputs/${input} INTO BrokeredEndpoint("/modules/host-module/inputs/${input}")`;
    routes.sealedToCloud = 'FROM /messages/modules/host-module/outputs/sealed INTO $upstream';
    m.modulesContent['host-module']['properties.desired'].pipelines = {
      sealTemperature: { input: 'sealed', ta: 'sensor-signer', command: 'signSealed', output: 'sealed', recipient },
      // Misconfigured: a command that answers in plaintext. Nothing it answers may leave.
      plainAnswer: { input: 'sealedPlain', ta: 'sensor-signer', command: 'sign', output: 'sealed', recipient },
      // 31 bytes: refused when the pipeline is configured.
      badKey: { input: 'sealedBadKey', ta: 'sensor-signer', command: 'signSealed', output: 'sealed', recipient: { ...recipient, x: Buffer.alloc(31, 7).toString('base64url') } },
    };
  });
  fuzzer = device.ModuleClient.fromConnectionString(t.sim.moduleConnectionString('fuzzer'), deviceMqtt.Mqtt);
  fuzzer.setOptions({ ca: t.ca });
  await fuzzer.open();
  const pk = await eventually(async () => {
    const r = await t.invoke('host-module', 'invokeTA', { ta: 'sensor-signer', command: 'publicKey' }, 5);
    if (r.status !== 200) throw new Error(JSON.stringify(r));
    return r.payload.result;
  }, 90_000);
  writeFileSync(SIGNER_FILE, JSON.stringify(pk));
}, 150_000);

afterAll(async () => {
  await fuzzer?.close().catch(() => undefined);
  await t?.close();
  rmSync(dir, { recursive: true, force: true });
});

const send = (output: string, reading: unknown) => fuzzer.sendOutputEvent(output, new device.Message(JSON.stringify(reading)));

/** The example consumer as a back end runs it; resolves with its JSON lines once it opened `count`. */
function consume(count: number): Promise<Array<Record<string, any>>> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--import', 'tsx', join(repoRoot, 'examples/sealed-readings/consumer.ts'), '--key', RECIPIENT_FILE, '--signer', SIGNER_FILE, '--connection-string', t.sim.eventHubConnectionString, '--from', 'earliest', '--count', String(count)], {
      cwd: repoRoot, timeout: 90_000, env: { PATH: process.env.PATH ?? '', NODE_EXTRA_CA_CERTS: t.sim.caCertPath },
    }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`consumer failed: ${err.message}\n${stderr}`));
      resolve(stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, any>));
    });
  });
}

describe('sealed readings (host-module pipeline with a recipient key)', () => {
  it('upstream carries ciphertext only; the consumer opens each reading and verifies its signature', async () => {
    const marker = `marker-${randomBytes(8).toString('hex')}`;
    await send('sealed', { sensor: 't1', value: 21.5, note: marker });
    await send('sealed', { sensor: 't1', value: 22.5, note: 'second' });
    const lines = await consume(2);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ ok: true, pipeline: 'sealTemperature', seq: expect.any(Number), reading: { sensor: 't1', value: 21.5, note: marker } });
    expect(lines[1]).toMatchObject({ ok: true, pipeline: 'sealTemperature', reading: { note: 'second' } });
    expect(lines[1]!.stream).toBe(lines[0]!.stream);
    expect(lines[1]!.seq).toBe(lines[0]!.seq + 1);
    // The consumer read both from the hub, so everything upstream for them is here now.
    const sealed = t.upstream.filter((m) => m.moduleId === 'host-module' && m.output === 'sealed');
    expect(sealed.length).toBeGreaterThanOrEqual(2);
    expect(sealed[0]!.body).toEqual({ v: 1, h: expect.any(String), enc: expect.any(String), ct: expect.any(String) });
    expect(sealed[0]!.properties).toMatchObject({ pipeline: 'sealTemperature', ta: 'sensor-signer' });
    expect(JSON.stringify(t.upstream)).not.toContain(marker);
    expect(t.simLog.join('\n')).not.toContain(marker);
  });

  it('a bad recipient key is refused with a named reason and the pipeline never runs; a plaintext answer is never sent', async () => {
    const twin = await eventually(async () => {
      const tw = (await t.hub.getModuleTwin(t.sim.deviceId, 'host-module')) as any;
      if (!tw.properties.reported.pipelines?.badKey) throw new Error('pipelines not reported yet');
      return tw;
    });
    expect(twin.properties.reported.pipelines.badKey).toMatchObject({ status: 'invalid', error: expect.stringMatching(/^recipient: recipient key refused \(length\): x must be the unpadded base64url of exactly 32 bytes/) });
    expect(twin.properties.reported.pipelines.sealTemperature).toMatchObject({ status: 'active', recipient: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/) });
    expect(t.output.join('\n')).toMatch(/pipeline refused: recipient key refused \(length\)/);

    const plainMarker = `plain-${randomBytes(8).toString('hex')}`;
    const badKeyMarker = `badkey-${randomBytes(8).toString('hex')}`;
    await send('sealedPlain', { sensor: 't2', value: 1, note: plainMarker });
    await send('sealedBadKey', { sensor: 't3', value: 2, note: badKeyMarker });
    // Each is settled when host-module reports it: the plaintext answer refused, the other input dropped.
    await eventually(() => {
      if (!t.output.some((l) => l.includes('pipeline failed') && l.includes('plainAnswer') && l.includes('answered no reading sealed to it'))) throw new Error('plaintext answer not refused yet');
      if (!t.upstream.some((m) => m.properties.type === 'pipeline.dropped' && m.body.source === 'input:sealedBadKey' && m.body.code === 'NO_PIPELINE')) throw new Error('bad-key input not reported dropped yet');
    }, 60_000);
    const all = [JSON.stringify(t.upstream), t.simLog.join('\n'), t.output.join('\n')].join('\n');
    expect(all).not.toContain(plainMarker);
    expect(all).not.toContain(badKeyMarker);
    // The healthy pipeline keeps sealing.
    await send('sealed', { sensor: 't1', value: 23.5, note: 'after' });
    expect((await consume(3)).at(-1)).toMatchObject({ ok: true, reading: { note: 'after' } });
  });
});
