/**
 * The registry through the unmodified azure-iothub Registry (in a back-end process): the device
 * and its modules, the device twin with tags, etags (If-Match → 412), twin queries, and
 * configurations — targetCondition on the device twin, priorities, layered deployments, removal —
 * plus a redeploy that replaces desired properties. One simulator for the file.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFileSync } from 'node:fs';
import { eventually, fixtureManifest, type TestSim } from './helpers.js';
import { startSimOnStandardPorts, startOfficialClients, SdkError, type OfficialClients } from './official-clients.js';

let t: TestSim;
let sdk: OfficialClients;
let device: string;

beforeAll(async () => {
  t = await startSimOnStandardPorts();
  sdk = await startOfficialClients(t);
  device = t.sim.deviceId;
  await eventually(() => t.invoke('probeA', 'whoami'));
}, 60_000);

afterAll(async () => {
  await sdk?.close();
  await t?.close();
});

const fails = (p: Promise<unknown>) => p.then(() => { throw new Error('expected the call to fail'); }, (e: SdkError) => e);
const manifest = (): { modulesContent: Record<string, any> } => JSON.parse(readFileSync(fixtureManifest, 'utf8'));
const withGreeting = (greeting: string) => {
  const m = manifest();
  m.modulesContent.probeA['properties.desired'] = { greeting };
  return m;
};
const desiredOfA = async () => (await sdk.registry('getModuleTwin', device, 'probeA')).body.properties.desired;

describe('identities', () => {
  it('get / list: the one IoT Edge device', async () => {
    const d = (await sdk.registry('get', device)).body;
    expect(d).toMatchObject({ deviceId: device, status: 'enabled', capabilities: { iotEdge: true }, connectionState: 'Connected' });
    expect((await sdk.registry('list')).body.map((x: any) => x.deviceId)).toEqual([device]);
    const err = await fails(sdk.registry('get', 'other'));
    expect([err.sdkName, err.statusCode]).toEqual(['DeviceNotFoundError', 404]);
    expect(err.message).toMatch(/Device other not found/);
  });

  it('getModulesOnDevice / getModule, with the runtime modules', async () => {
    const mods = (await sdk.registry('getModulesOnDevice', device)).body.map((m: any) => m.moduleId);
    expect(mods).toEqual(expect.arrayContaining(['$edgeAgent', '$edgeHub', 'probeA', 'probeB', 'probeLate', 'otherImage']));
    expect((await sdk.registry('getModule', device, 'probeA')).body).toMatchObject({ moduleId: 'probeA', deviceId: device, connectionState: 'Connected' });
    const err = await fails(sdk.registry('getModule', device, 'nope'));
    expect(err.statusCode).toBe(404);
    expect(err.responseBody).toMatch(/ErrorCode:ModuleNotFound;Module nope not found/);
  });
});

describe('twins and etags', () => {
  it('the device twin takes tags; a stale etag is 412 (InvalidEtagError) and changes nothing', async () => {
    const before = (await sdk.registry('getTwin', device)).body;
    expect(before).toMatchObject({ deviceId: device, tags: {}, capabilities: { iotEdge: true } });
    const after = (await sdk.registry('updateTwin', device, { tags: { environment: 'test', site: { name: 'north' } } }, before.etag)).body;
    expect(after.tags).toEqual({ environment: 'test', site: { name: 'north' } });
    expect(after.etag).not.toBe(before.etag);
    const err = await fails(sdk.registry('updateTwin', device, { tags: { environment: 'lost' } }, before.etag));
    expect([err.sdkName, err.statusCode]).toEqual(['InvalidEtagError', 412]);
    expect((await sdk.registry('getTwin', device)).body.tags.environment).toBe('test');
  });

  it('a module twin patch with a stale etag is 412; the current etag and * go through', async () => {
    const tw = (await sdk.registry('getModuleTwin', device, 'probeA')).body;
    await sdk.registry('updateModuleTwin', device, 'probeA', { properties: { desired: { extra: 1 } } }, tw.etag);
    const err = await fails(sdk.registry('updateModuleTwin', device, 'probeA', { properties: { desired: { extra: 2 } } }, tw.etag));
    expect([err.sdkName, err.statusCode]).toEqual(['InvalidEtagError', 412]);
    expect((await desiredOfA()).extra).toBe(1);
    await sdk.registry('updateModuleTwin', device, 'probeA', { properties: { desired: { extra: 3 } } }, '*');
    expect((await desiredOfA()).extra).toBe(3);
  });

  it('a redeploy replaces desired properties patched since the deployment', async () => {
    await sdk.registry('updateModuleTwin', device, 'probeA', { properties: { desired: { patched: true } } }, '*');
    await sdk.registry('applyConfigurationContentOnDevice', device, manifest());
    const d = await desiredOfA();
    expect(d.patched).toBeUndefined();
    expect(d.extra).toBeUndefined();
    expect(d.greeting).toBe('hello');
  });
});

describe('queries', () => {
  it('devices and devices.modules with WHERE on tags and properties', async () => {
    const q = (sql: string) => sdk.registry('createQuery', sql).then((r) => r.body as any[]);
    expect((await q("SELECT * FROM devices WHERE tags.environment = 'test'")).map((d) => d.deviceId)).toEqual([device]);
    expect(await q("SELECT * FROM devices WHERE tags.environment = 'prod'")).toEqual([]);
    expect((await q("SELECT * FROM devices WHERE tags.site.name = 'north' AND capabilities.iotEdge = true")).length).toBe(1);
    expect((await q("SELECT * FROM devices.modules WHERE properties.desired.greeting = 'hello'")).map((m) => m.moduleId)).toEqual(['probeA']);
    const running = await q("SELECT * FROM devices.modules WHERE moduleId = '$edgeAgent' AND properties.reported.modules.probeA.runtimeStatus = 'running'");
    expect(running.map((m) => m.moduleId)).toEqual(['$edgeAgent']);
    expect((await q("SELECT * FROM devices.modules WHERE NOT IS_DEFINED(properties.desired.greeting) AND moduleId = 'probeB'")).length).toBe(1);
  });

  // Rows that are not whole twins are read with Query.next() (nextAsTwin would wrap them as Twins).
  const rows = (sql: string) => sdk.queryPages(sql, undefined, 'raw').then((pages) => pages.flatMap((p) => p.items));

  it('projections: chosen fields under their last path segment or their AS name; a field a twin lacks is left out', async () => {
    expect(await rows('SELECT deviceId, tags.environment, capabilities.iotEdge AS edge FROM devices')).toEqual([{ deviceId: device, environment: 'test', edge: true }]);
    expect(await rows("SELECT moduleId, properties.desired.greeting AS greeting FROM devices.modules WHERE moduleId = 'probeA' OR moduleId = 'probeB'")).toEqual([
      { moduleId: 'probeA', greeting: 'hello' },
      { moduleId: 'probeB' },
    ]);
    const pages = await sdk.queryPages("SELECT properties.reported.modules.probeA.runtimeStatus AS status FROM devices.modules WHERE moduleId = '$edgeAgent'", undefined, 'raw');
    expect(pages).toEqual([{ items: [{ status: 'running' }], hasMoreResults: false, continuationToken: null }]);
  });

  it('SELECT COUNT() [AS n] and TOP n', async () => {
    const q = (sql: string) => sdk.registry('createQuery', sql).then((r) => r.body as any[]);
    const all = (await q('SELECT * FROM devices.modules')).map((m) => m.moduleId);
    expect(all).toEqual(expect.arrayContaining(['$edgeAgent', '$edgeHub', 'probeA', 'probeB']));
    expect(await rows('SELECT COUNT() AS n FROM devices.modules')).toEqual([{ n: all.length }]);
    expect(await rows("SELECT COUNT() FROM devices.modules WHERE moduleId = 'probeA'")).toEqual([{ $1: 1 }]);
    expect(await rows("SELECT COUNT() AS n FROM devices WHERE tags.environment = 'prod'")).toEqual([{ n: 0 }]);
    expect((await q('SELECT TOP 2 * FROM devices.modules')).map((m) => m.moduleId)).toEqual(all.slice(0, 2));
    expect(await rows('SELECT TOP 1 moduleId FROM devices.modules')).toEqual([{ moduleId: all[0] }]);
  });

  it('paging as the SDK Query does it: x-ms-max-item-count rows a page, x-ms-continuation until hasMoreResults is false', async () => {
    const all = (await sdk.registry('createQuery', 'SELECT * FROM devices.modules').then((r) => r.body as any[])).map((m) => m.moduleId);
    expect(all.length).toBeGreaterThan(4);
    const pages = await sdk.queryPages('SELECT * FROM devices.modules', 2, 'twin');
    expect(pages.map((p) => p.items.length)).toEqual(Array.from({ length: Math.ceil(all.length / 2) }, (_, i) => Math.min(2, all.length - 2 * i)));
    expect(pages.map((p) => p.hasMoreResults)).toEqual(pages.map((_, i) => i < pages.length - 1));
    expect(pages.at(-1)!.continuationToken).toBeNull();
    // nextAsTwin gives Twin objects of the module twins, every module once, in order.
    expect(pages.flatMap((p) => p.items.map((tw: any) => tw.moduleId))).toEqual(all);
    expect(pages[0]!.items[0]).toMatchObject({ deviceId: device, properties: { desired: expect.any(Object), reported: expect.any(Object) } });
    // Projections page too (next()), and a query can resume from a token a page returned.
    const raw = await sdk.queryPages('SELECT moduleId FROM devices.modules', 3, 'raw');
    expect(raw.flatMap((p) => p.items)).toEqual(all.map((moduleId) => ({ moduleId })));
    const resumed = await sdk.queryPages('SELECT moduleId FROM devices.modules', 3, 'raw', raw[0]!.continuationToken!);
    expect(resumed.flatMap((p) => p.items)).toEqual(all.slice(3).map((moduleId) => ({ moduleId })));
  });

  it('what the simulator does not support, and a bad continuation token, are 400s in IoT Hub\'s shape naming the problem', async () => {
    const cases: [string, RegExp][] = [
      ['SELECT AVG(properties.reported.t) AS t FROM devices', /AVG\(\) is not supported \(COUNT\(\) is\)/],
      ['SELECT tags.site, COUNT() AS n FROM devices', /COUNT\(\) with other fields needs GROUP BY, which is not supported/],
      ['SELECT * FROM devices GROUP BY tags.site', /unexpected "GROUP" at 22 \(GROUP BY is not supported\)/],
      ['SELECT * FROM devices.jobs', /FROM devices or devices\.modules \(found "devices\.jobs"/],
      ['SELECT TOP 0 * FROM devices', /TOP takes a whole number of at least 1/],
      ['SELECT *, deviceId FROM devices', /SELECT \* cannot be combined with other fields/],
      ['SELECT properties.desired.x, properties.reported.x FROM devices', /two fields are named "x"; name one with AS/],
    ];
    for (const [sql, message] of cases) {
      const err = await fails(sdk.registry('createQuery', sql));
      expect([sql, err.sdkName, err.statusCode]).toEqual([sql, 'ArgumentError', 400]);
      const body = JSON.parse(err.responseBody!);
      expect(body.Message).toMatch(/^ErrorCode:ArgumentInvalid;query: /);
      expect(body.message).toMatch(message);
    }
    const bad = await fails(sdk.queryPages('SELECT * FROM devices.modules', 2, 'twin', 'not-a-token'));
    expect([bad.sdkName, bad.statusCode]).toEqual(['ArgumentError', 400]);
    expect(JSON.parse(bad.responseBody!).message).toBe('x-ms-continuation: not a continuation token this query returned');
    // A token is bound to its query.
    const other = (await sdk.queryPages('SELECT moduleId FROM devices.modules', 1, 'raw'))[0]!.continuationToken!;
    expect(JSON.parse((await fails(sdk.queryPages('SELECT * FROM devices.modules', 1, 'raw', other))).responseBody!).message).toMatch(/^x-ms-continuation:/);
    // The registry keeps answering.
    expect(await rows('SELECT deviceId FROM devices')).toEqual([{ deviceId: device }]);
  });
});

describe('configurations (deployments at scale)', () => {
  it('targetCondition is evaluated on the device twin; create, get, list; the highest priority wins; removal falls back', async () => {
    const base = (await sdk.registry('addConfiguration', { id: 'base-1', content: withGreeting('base-1'), targetCondition: "tags.environment='test'", priority: 10 })).body;
    expect(base).toMatchObject({ id: 'base-1', priority: 10, etag: expect.any(String) });
    expect((await desiredOfA()).greeting).toBe('base-1');
    await sdk.registry('addConfiguration', { id: 'elsewhere', content: withGreeting('elsewhere'), targetCondition: "tags.environment='prod'", priority: 99 });
    expect((await desiredOfA()).greeting).toBe('base-1');
    await sdk.registry('addConfiguration', { id: 'base-2', content: withGreeting('base-2'), targetCondition: "tags.site.name='north'", priority: 20 });
    expect((await desiredOfA()).greeting).toBe('base-2');
    expect((await sdk.registry('getConfiguration', 'base-2')).body.targetCondition).toBe("tags.site.name='north'");
    expect((await sdk.registry('getConfigurations')).body.map((c: any) => c.id).sort()).toEqual(['base-1', 'base-2', 'elsewhere']);
    await sdk.registry('removeConfiguration', 'base-2');
    expect((await desiredOfA()).greeting).toBe('base-1');
    await expect(fails(sdk.registry('getConfiguration', 'base-2'))).resolves.toMatchObject({ statusCode: 404 });
  });

  it('a layered deployment adds to the base one: module settings and desired properties by path', async () => {
    await sdk.registry('addConfiguration', {
      id: 'layer-1',
      content: { modulesContent: { $edgeAgent: { 'properties.desired.modules.probeA.env.PROBE_TAG': { value: 'layered' } }, probeA: { 'properties.desired.layer': 'yes' } } },
      targetCondition: "tags.environment='test'",
      priority: 5,
    });
    expect(await desiredOfA()).toMatchObject({ greeting: 'base-1', layer: 'yes' });
    await eventually(async () => expect((await t.invoke('probeA', 'whoami')).payload.env).toBe('layered'));
  });

  it('a tag change retargets: no configuration matches, the device runs its own deployment again', async () => {
    const tw = (await sdk.registry('getTwin', device)).body;
    await sdk.registry('updateTwin', device, { tags: { environment: 'staging', site: null } }, tw.etag);
    const d = await desiredOfA();
    expect(d.greeting).toBe('hello');
    expect(d.layer).toBeUndefined();
    await eventually(async () => expect((await t.invoke('probeA', 'whoami')).payload.env).toBe('a-1'));
  });

  it('updateConfiguration with a stale etag is 412; adding an existing id is 409; a bad targetCondition is 400', async () => {
    const c = (await sdk.registry('getConfiguration', 'base-1')).body;
    await sdk.registry('updateConfiguration', { ...c, priority: 11 });
    const stale = await fails(sdk.registry('updateConfiguration', { ...c, priority: 12 }));
    expect([stale.sdkName, stale.statusCode]).toEqual(['InvalidEtagError', 412]);
    await sdk.registry('updateConfiguration', { ...c, priority: 13 }, true); // forceUpdate: If-Match *
    expect((await sdk.registry('getConfiguration', 'base-1')).body.priority).toBe(13);
    expect((await fails(sdk.registry('addConfiguration', { id: 'base-1', content: withGreeting('x'), targetCondition: "tags.a='b'" }))).statusCode).toBe(409);
    const bad = await fails(sdk.registry('addConfiguration', { id: 'bad-1', content: withGreeting('x'), targetCondition: "tags.a = 'unterminated" }));
    expect([bad.sdkName, bad.statusCode]).toEqual(['ArgumentError', 400]);
    expect(bad.message).toMatch(/targetCondition: unterminated string/);
  });
});
