/** IoT Hub MQTT topic names and property bags as azure-iot-device-mqtt writes and reads them. */

export interface PropertyBag {
  /** `$.`-prefixed system properties (`$.mid`, `$.cid`, `$.ct`, `$.ce`, …) without `$.on`. */
  system: Record<string, string>;
  /** Application properties. */
  app: Record<string, string>;
  /** `$.on`: the output name of sendOutputEvent. */
  output?: string;
}

/** Decode `k=v&k2=v2` (each side URL-encoded); tolerant of empty or malformed pairs. */
export function decodeBag(bag: string): PropertyBag {
  // Null prototypes: property names are the sender's, and routes look them up by name.
  const out: PropertyBag = { system: Object.create(null) as Record<string, string>, app: Object.create(null) as Record<string, string> };
  if (!bag) return out;
  for (const pair of bag.split('&')) {
    if (!pair) continue;
    const eq = pair.indexOf('=');
    const k = safeDecode(eq < 0 ? pair : pair.slice(0, eq));
    const v = eq < 0 ? '' : safeDecode(pair.slice(eq + 1));
    if (k === '$.on') out.output = v;
    else if (k.startsWith('$.')) out.system[k] = v;
    else out.app[k] = v;
  }
  return out;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, '%20'));
  } catch {
    return s;
  }
}

/** Encode system then application properties the way the SDK's parser splits them back. */
export function encodeBag(system: Record<string, string>, app: Record<string, string>): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(system)) parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
  for (const [k, v] of Object.entries(app)) parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
  return parts.join('&');
}

export type ClientTopic =
  | { kind: 'event'; deviceId: string; moduleId: string; bag: string }
  | { kind: 'methodResponse'; status: number; rid: string }
  | { kind: 'twinGet'; rid: string }
  | { kind: 'twinReported'; rid: string }
  | { kind: 'unknown' };

const EVENT = /^devices\/([^/]+)\/modules\/([^/]+)\/messages\/events(?:\/(.*))?$/;
const METHOD_RES = /^\$iothub\/methods\/res\/(\d{1,3})\/\?(.*)$/;
const TWIN_GET = /^\$iothub\/twin\/GET\/\?(.*)$/i;
const TWIN_REPORTED = /^\$iothub\/twin\/PATCH\/properties\/reported\/\?(.*)$/i;

function rid(query: string): string | undefined {
  for (const part of query.split('&')) if (part.startsWith('$rid=')) return safeDecode(part.slice(5));
  return undefined;
}

/** Classify a topic a module client publishes on. */
export function parseClientTopic(topic: string): ClientTopic {
  let m = EVENT.exec(topic);
  if (m) return { kind: 'event', deviceId: m[1]!, moduleId: m[2]!, bag: (m[3] ?? '').replace(/\/$/, '') };
  m = METHOD_RES.exec(topic);
  if (m) {
    const r = rid(m[2]!);
    return r ? { kind: 'methodResponse', status: Number(m[1]), rid: r } : { kind: 'unknown' };
  }
  m = TWIN_GET.exec(topic);
  if (m) {
    const r = rid(m[1]!);
    return r ? { kind: 'twinGet', rid: r } : { kind: 'unknown' };
  }
  m = TWIN_REPORTED.exec(topic);
  if (m) {
    const r = rid(m[1]!);
    return r ? { kind: 'twinReported', rid: r } : { kind: 'unknown' };
  }
  return { kind: 'unknown' };
}

/** The input topic; the slash after the input name is required by the SDK's matcher. */
export function inputTopic(deviceId: string, moduleId: string, input: string, bag: string): string {
  return `devices/${deviceId}/modules/${moduleId}/inputs/${input}/${bag}`;
}

export function inputFilter(deviceId: string, moduleId: string): string {
  return `devices/${deviceId}/modules/${moduleId}/inputs/#`;
}

export const METHOD_FILTER = '$iothub/methods/POST/#';
export const TWIN_RES_FILTER = '$iothub/twin/res/#';
export const TWIN_DESIRED_FILTER = '$iothub/twin/PATCH/properties/desired/#';

export const methodRequestTopic = (name: string, rid: string): string => `$iothub/methods/POST/${name}/?$rid=${rid}`;
export const twinResponseTopic = (status: number, rid: string, version?: number): string =>
  `$iothub/twin/res/${status}/?$rid=${rid}${version === undefined ? '' : `&$version=${version}`}`;
export const desiredPatchTopic = (version: number): string => `$iothub/twin/PATCH/properties/desired/?$version=${version}`;
