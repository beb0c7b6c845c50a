import { describe, it, expect } from 'vitest';
import { decodeBag, encodeBag, parseClientTopic, inputTopic, mergePatch, TwinStore } from '@enclave-edge/edge-sim/hub';

describe('IoT Hub MQTT topics', () => {
  it('parses output events with the URL-encoded property bag the SDK writes', () => {
    const t = parseClientTopic('devices/d/modules/m/messages/events/%24.on=out1&%24.mid=id%201&%24.ct=application%2Fjson&user=a%26b%3Dc');
    expect(t).toEqual({ kind: 'event', deviceId: 'd', moduleId: 'm', bag: '%24.on=out1&%24.mid=id%201&%24.ct=application%2Fjson&user=a%26b%3Dc' });
    const bag = decodeBag((t as { bag: string }).bag);
    expect(bag).toEqual({ output: 'out1', system: { '$.mid': 'id 1', '$.ct': 'application/json' }, app: { user: 'a&b=c' } });
  });

  it('parses method responses, twin GET and reported PATCH with their request ids', () => {
    expect(parseClientTopic('$iothub/methods/res/200/?$rid=1a')).toEqual({ kind: 'methodResponse', status: 200, rid: '1a' });
    expect(parseClientTopic('$iothub/twin/GET/?$rid=7')).toEqual({ kind: 'twinGet', rid: '7' });
    expect(parseClientTopic('$iothub/twin/PATCH/properties/reported/?$rid=8')).toEqual({ kind: 'twinReported', rid: '8' });
    expect(parseClientTopic('$iothub/methods/res/200/')).toEqual({ kind: 'unknown' });
    expect(parseClientTopic('devices/d/modules/other/inputs/x/')).toEqual({ kind: 'unknown' });
  });

  it('builds input topics with the slash after the input name, bag round-tripping', () => {
    const bag = encodeBag({ '$.mid': 'm/1' }, { 'k y': 'v&w' });
    expect(inputTopic('d', 'm', 'in1', bag)).toBe('devices/d/modules/m/inputs/in1/%24.mid=m%2F1&k%20y=v%26w');
    expect(inputTopic('d', 'm', 'in1', '')).toBe('devices/d/modules/m/inputs/in1/');
    expect(decodeBag(bag)).toEqual({ system: { '$.mid': 'm/1' }, app: { 'k y': 'v&w' } });
  });
});

describe('module twins', () => {
  it('merge-patches (null deletes, $ keys ignored) and versions each side', () => {
    expect(mergePatch({ a: 1, b: { c: 2, d: 3 } }, { b: { c: null, e: 4 }, $version: 9, f: [1] })).toEqual({ a: 1, b: { d: 3, e: 4 }, f: [1] });
    const s = new TwinStore('dev');
    const v0 = s.deviceView('m');
    expect(v0).toEqual({ desired: { $version: 1 }, reported: { $version: 1 } });
    expect(s.patchDesired('m', { x: 1 })).toBe(2);
    expect(s.patchReported('m', { y: 2 })).toBe(2);
    expect(s.deviceView('m')).toEqual({ desired: { x: 1, $version: 2 }, reported: { y: 2, $version: 2 } });
    expect(s.serviceView('m', true)).toMatchObject({ deviceId: 'dev', moduleId: 'm', connectionState: 'Connected', properties: { desired: { x: 1 } } });
  });
});
