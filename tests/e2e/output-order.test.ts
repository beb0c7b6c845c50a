/**
 * Pipeline outputs keep their order across a dropped edgeHub connection: readings stream
 * through host-module's signTemperature pipeline while its MQTT link fails several times with
 * outputs sent and not acknowledged (some lost on the wire, some routed but their PUBACK never
 * sent). Every reading must arrive signed at $upstream, and the first arrival of each must be
 * in the order sent; duplicates (at least once) are counted, not hidden.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import device from 'azure-iot-device';
import deviceMqtt from 'azure-iot-device-mqtt';
import { eventually, startE2E, type E2E } from './harness.js';

const RUN = `order-${process.pid}`;
const READINGS = 2000;
/** How many readings have arrived signed when each failure is set off: alternately the link dies (outputs lost on the wire) and edgeHub closes the connection. */
const FAILURES = Array.from({ length: 16 }, (_, i) => ({ at: 100 * (i + 1), kind: i % 2 === 0 ? ('lose' as const) : ('close' as const) }));

let t: E2E;
let fuzzer: InstanceType<typeof device.ModuleClient>;
beforeAll(async () => {
  t = await startE2E();
  fuzzer = device.ModuleClient.fromConnectionString(t.sim.moduleConnectionString('fuzzer'), deviceMqtt.Mqtt);
  fuzzer.setOptions({ ca: t.ca });
  await fuzzer.open();
  await eventually(() => {
    if (!t.upstream.some((m) => m.moduleId === 'host-module' && m.properties.pipeline === 'signTemperature')) throw new Error('pipeline not running yet');
  }, 90_000);
}, 120_000);
afterAll(async () => {
  await fuzzer?.close().catch(() => undefined);
  await t?.close();
});

/** Sequence numbers of this run's signed readings, in arrival order (duplicates included). */
const arrivals = (): number[] =>
  t.upstream
    .filter((m) => m.moduleId === 'host-module' && m.properties.orderRun === RUN)
    .map((m) => {
      expect(m.body).toMatchObject({ signature: expect.any(String), alg: 'ES256' });
      return Number(m.body.reading.seq);
    });

/** Readings `from`..`to`-1 into the pipeline at a steady pace: two sends outstanding at a time, in order on one connection (the lane's window is then seldom full, so newer outputs could overtake). */
async function sendReadings(from: number, to: number): Promise<void> {
  const outstanding = new Set<Promise<unknown>>();
  for (let seq = from; seq < to; seq++) {
    const m = new device.Message(JSON.stringify({ seq, machine: { temperature: 20 + (seq % 10) } }));
    m.properties.add('orderRun', RUN);
    const p = fuzzer.sendOutputEvent('toHostSensor', m).finally(() => outstanding.delete(p));
    outstanding.add(p);
    if (outstanding.size >= 2) await Promise.race(outstanding);
  }
  await Promise.all(outstanding);
}

const inRange = (from: number, to: number) => arrivals().filter((s) => s >= from && s < to);

async function signedAtLeast(from: number, to: number, n: number, timeoutMs = 120_000): Promise<void> {
  await eventually(() => {
    const got = new Set(inRange(from, to)).size;
    if (got < n) throw new Error(`${got} of readings ${from}..${to - 1} signed yet (waiting for ${n})`);
  }, timeoutMs, 20);
}

/** Every reading `from`..`to`-1 arrived signed, first arrivals in order; logs the counts. */
function expectAllInOrder(from: number, to: number, what: string): void {
  const got = inRange(from, to);
  const seen = new Set<number>();
  const firsts: number[] = [];
  for (const s of got) if (!seen.has(s)) (seen.add(s), firsts.push(s));
  expect([...seen].sort((a, b) => a - b)).toEqual(Array.from({ length: to - from }, (_, i) => from + i));
  const outOfOrder = firsts.filter((s, i) => i > 0 && s < firsts[i - 1]!);
  if (outOfOrder.length > 0) {
    const i = firsts.indexOf(outOfOrder[0]!);
    console.info(`first arrivals around it: ${firsts.slice(Math.max(0, i - 15), i + 5).join(' ')}`);
  }
  console.info(`output order, ${what}: ${to - from} readings, ${got.length - (to - from)} duplicates, ${outOfOrder.length} out of order`);
  expect(outOfOrder).toEqual([]);
}

const connectedAgain = () =>
  eventually(() => {
    if (!t.sim.hub.isConnected('host-module')) throw new Error('host-module not connected again yet');
  }, 60_000);

describe('host-module loses its edgeHub connection with outputs in flight', () => {
  it('every reading arrives signed at $upstream, first arrivals in the order sent', async () => {
    const sending = sendReadings(0, READINGS);
    const lost: number[] = [];
    for (const { at, kind } of FAILURES) {
      await signedAtLeast(0, READINGS, at);
      if (kind === 'lose') lost.push(await t.sim.hub.loseLinkForTest('host-module'));
      else t.sim.hub.disconnect('host-module');
      await connectedAgain();
    }
    await sending;
    await signedAtLeast(0, READINGS, READINGS, 180_000);
    console.info(`events lost on the wire per link failure: ${lost.join(', ')}`);
    expectAllInOrder(0, READINGS, `${FAILURES.length} connection failures`);
  }, 300_000);

  it('the same when the link dies and edgeHub then refuses to reconnect it for a while (re-sends fail until it is back)', async () => {
    const from = READINGS;
    const to = from + 600;
    const sending = sendReadings(from, to);
    await signedAtLeast(from, to, 100);
    const refusal = t.sim.hub.refuseConnectionsForTest('host-module');
    const lost = await t.sim.hub.loseLinkForTest('host-module');
    await eventually(() => {
      if (refusal.refused() < 3) throw new Error(`host-module refused ${refusal.refused()} times yet`);
    }, 60_000);
    refusal.allow();
    await connectedAgain();
    await sending;
    await signedAtLeast(from, to, to - from, 180_000);
    console.info(`events lost on the wire: ${lost}, reconnections refused: ${refusal.refused()}`);
    expectAllInOrder(from, to, 'edgeHub refusing reconnection');
  }, 300_000);
});
