import { describe, expect, it } from 'vitest';
import { EnclaveEdgeError } from '@enclave-edge/errors';
import { compileRoutes, DEFAULT_ROUTE_PRIORITY, routeMessage, RouteSyntaxError, type RouteMessage } from '@enclave-edge/edge-sim/routes';

function msg(over: Partial<RouteMessage> & { moduleId?: string; output?: string } = {}): RouteMessage {
  const { moduleId = 'sensor', output = 'temperatureOutput', ...rest } = over;
  return {
    source: { deviceId: 'dev1', moduleId, output },
    systemProperties: {},
    properties: {},
    body: Buffer.alloc(0),
    ...rest,
  };
}

const json = (body: unknown, extra: Record<string, string> = {}) =>
  msg({ systemProperties: { contentType: 'application/json', contentEncoding: 'utf-8', ...extra }, body: Buffer.from(JSON.stringify(body)) });

function one(text: string) {
  return compileRoutes({ r: text })[0]!;
}

function syntaxError(text: string, name = 'r'): RouteSyntaxError {
  try {
    compileRoutes({ [name]: text });
  } catch (err) {
    expect(err).toBeInstanceOf(RouteSyntaxError);
    return err as RouteSyntaxError;
  }
  throw new Error(`route compiled but should not: ${text}`);
}

describe('route sources', () => {
  const cases: [string, RouteMessage, boolean][] = [
    ['FROM /* INTO $upstream', msg(), true],
    ['FROM /messages/* INTO $upstream', msg(), true],
    ['FROM /messages/* INTO $upstream', msg({ source: { deviceId: 'leaf' } }), true],
    ['FROM /messages/modules/* INTO $upstream', msg({ source: { deviceId: 'leaf' } }), false],
    ['FROM /messages/modules/* INTO $upstream', msg(), true],
    ['FROM /messages/modules/sensor/* INTO $upstream', msg(), true],
    ['FROM /messages/modules/sensor/* INTO $upstream', msg({ moduleId: 'other' }), false],
    ['FROM /messages/modules/sensor/outputs/* INTO $upstream', msg(), true],
    ['FROM /messages/modules/sensor/outputs/* INTO $upstream', msg({ source: { deviceId: 'd', moduleId: 'sensor' } }), false],
    ['FROM /messages/modules/sensor/outputs/temperatureOutput INTO $upstream', msg(), true],
    ['FROM /messages/modules/sensor/outputs/temperatureOutput INTO $upstream', msg({ output: 'other' }), false],
    ['FROM /messages/modules/Sensor/outputs/temperatureOutput INTO $upstream', msg(), false], // module ids are case-sensitive
    ['from /MESSAGES/Modules/sensor/OUTPUTS/temperatureOutput into $UPSTREAM', msg(), true], // keywords are not
    ['FROM /twinChangeNotifications INTO $upstream', msg(), false],
  ];
  it.each(cases)('%s', (text, m, expected) => {
    expect(one(text).matches(m)).toBe(expected);
  });

  it('exposes the parsed source and sink', () => {
    const r = one('FROM /messages/modules/a/outputs/o1 INTO BrokeredEndpoint("/modules/b/inputs/i1")');
    expect(r.source).toEqual({ kind: 'moduleOutput', text: '/messages/modules/a/outputs/o1', module: 'a', output: 'o1' });
    expect(r.sink).toEqual({ kind: 'module', key: '/modules/b/inputs/i1', module: 'b', input: 'i1' });
    expect(r.priority).toBe(DEFAULT_ROUTE_PRIORITY);
    expect(r.timeToLiveSecs).toBeUndefined();
  });

  it('accepts single-quoted endpoints and spacing inside BrokeredEndpoint', () => {
    const r = one("FROM /* INTO brokeredendpoint ( '/modules/b/inputs/i1' )");
    expect(r.sink.key).toBe('/modules/b/inputs/i1');
  });
});

describe('conditions', () => {
  const m = msg({
    systemProperties: { '$.ct': 'application/json', '$.ce': 'utf-8', '$.mid': 'm-1', '$.cid': 'c-9', '$.uid': 'u' },
    properties: { alert: 'true', level: 'critical', temperature: '35.5', 'my-prop': 'x', count: '7' },
    body: Buffer.from(JSON.stringify({ machine: { temperature: 80.25, pressure: 4 }, tag: 'hot', ok: true, list: [1] })),
  });
  const cases: [string, boolean][] = [
    ["$contentType = 'application/json'", true],
    ["$contentEncoding = 'utf-8'", true],
    ["$messageId = 'm-1'", true],
    ["$correlationId <> 'c-9'", false],
    ["$correlationId != 'x'", true],
    ["$userId = 'u'", true],
    ["$connectionDeviceId = 'dev1'", true],
    ["$connectionModuleId = 'sensor'", true],
    ["$outputName = 'temperatureOutput'", true],
    ["$CONTENTTYPE = 'application/json'", true],
    ["level = 'critical'", true],
    ["level = 'Critical'", false], // values are case-sensitive…
    ["LEVEL = 'critical'", true], // …property names are not (IoT Hub)
    ['alert = true', true],
    ['alert = false', false],
    ['temperature > 30', true],
    ['temperature >= 35.5', true],
    ['temperature < 35.5', false],
    ['temperature <= 35.5', true],
    ['count = 7', true],
    ["count > '10'", true], // string vs string compares as strings: '7' > '10'
    ["[my-prop] = 'x'", true],
    ['IS_DEFINED(level)', true],
    ['IS_DEFINED(missing)', false],
    ['NOT IS_DEFINED(missing)', true],
    ["missing = 'x'", false],
    ["NOT (missing = 'x')", false], // undefined stays undefined under NOT: no match
    ["missing = 'x' OR level = 'critical'", true],
    ["missing = 'x' AND level = 'critical'", false],
    ["level = 'critical' AND (alert = false OR temperature > 35)", true],
    ["level = 'critical' AND alert = false OR temperature > 35", true],
    ["level = 'info' OR alert = true AND temperature > 100", false], // AND binds tighter than OR
    ['$body.machine.temperature > 80', true],
    ['$body.machine.temperature > 80.5', false],
    ["$body.tag = 'hot'", true],
    ['$body.ok = true', true],
    ['IS_DEFINED($body.machine.pressure)', true],
    ['IS_DEFINED($body.machine.humidity)', false],
    ['IS_OBJECT($body.machine)', true],
    ['IS_ARRAY($body.list)', true],
    ["STARTS_WITH(level, 'crit')", true],
    ["CONTAINS(level, 'ritic')", true],
    ["ENDS_WITH(level, 'x')", false],
    ["LOWER('ABC') = 'abc'", true],
    ["UPPER(level) = 'CRITICAL'", true],
    ['LENGTH(level) = 8', true],
    ["level = 'it''s'", false],
    ['3 > 2', true],
    ['-1 < 0', true],
    ['1e3 = 1000', true],
    ['true', true],
    ['false OR true', true],
  ];
  it.each(cases)('WHERE %s → %s', (cond, expected) => {
    expect(one(`FROM /messages/* WHERE ${cond} INTO $upstream`).matches(m)).toBe(expected);
  });

  it('keeps the condition text', () => {
    expect(one("FROM /* WHERE a = 'b' INTO $upstream").condition).toBe("a = 'b'");
  });

  it('reads $body only for JSON declared as UTF-8 or UTF-16', () => {
    const r = one('FROM /* WHERE $body.v = 1 INTO $upstream');
    expect(r.matches(json({ v: 1 }))).toBe(true);
    expect(r.matches(json({ v: 1 }, { contentEncoding: 'UTF-8' }))).toBe(true);
    const utf16 = msg({ systemProperties: { contentType: 'application/json', contentEncoding: 'utf-16' }, body: Buffer.from('\uFEFF{"v":1}', 'utf16le') });
    expect(r.matches(utf16)).toBe(true);
    expect(r.matches({ ...utf16, systemProperties: { contentType: 'application/json', contentEncoding: 'utf-32' } })).toBe(false);
    expect(r.matches(json({ v: 1 }, { contentEncoding: 'latin1' }))).toBe(false);
    expect(r.matches(msg({ systemProperties: { contentType: 'application/json' }, body: Buffer.from('{"v":1}') }))).toBe(false);
    expect(r.matches(msg({ systemProperties: { contentType: 'text/plain', contentEncoding: 'utf-8' }, body: Buffer.from('{"v":1}') }))).toBe(false);
    expect(r.matches(msg({ systemProperties: { contentType: 'application/json', contentEncoding: 'utf-8' }, body: Buffer.from('{not json') }))).toBe(false);
  });

  it('does not let a property named like an Object.prototype member match', () => {
    const r = one("FROM /* WHERE IS_DEFINED(constructor) OR IS_DEFINED($body.toString) INTO $upstream");
    expect(r.matches(json({ a: 1 }))).toBe(false);
  });

  it('a leaf device message has no $connectionModuleId', () => {
    const r = one('FROM /messages/* WHERE NOT IS_DEFINED($connectionModuleId) INTO $upstream');
    expect(r.matches(msg({ source: { deviceId: 'leaf' } }))).toBe(true);
    expect(r.matches(msg())).toBe(false);
  });
});

describe('routeMessage', () => {
  it('delivers once per sink, with the highest priority route deciding priority and TTL', () => {
    const routes = compileRoutes({
      all: 'FROM /messages/* INTO $upstream',
      hot: { route: "FROM /messages/* WHERE $body.t > 50 INTO $upstream", priority: 0, timeToLiveSecs: 60 },
      mid: { route: 'FROM /messages/modules/sensor/* INTO $upstream', priority: 3, timeToLiveSecs: 600 },
      toFilter: 'FROM /messages/modules/sensor/outputs/temperatureOutput INTO BrokeredEndpoint("/modules/filter/inputs/input1")',
      toFilterAgain: 'FROM /messages/modules/sensor/* INTO BrokeredEndpoint("/modules/filter/inputs/input1")',
      toOther: 'FROM /messages/modules/other/* INTO BrokeredEndpoint("/modules/x/inputs/y")',
    });
    const sinks = routeMessage(routes, json({ t: 70 }));
    expect(sinks).toEqual([
      { kind: 'upstream', key: '$upstream', priority: 0, timeToLiveSecs: 60, routes: ['all', 'hot', 'mid'] },
      { kind: 'module', key: '/modules/filter/inputs/input1', module: 'filter', input: 'input1', priority: DEFAULT_ROUTE_PRIORITY, routes: ['toFilter', 'toFilterAgain'] },
    ]);
    const cool = routeMessage(routes, json({ t: 10 }));
    expect(cool[0]).toMatchObject({ key: '$upstream', priority: 3, timeToLiveSecs: 600, routes: ['all', 'mid'] });
  });

  it('returns nothing when no route matches', () => {
    expect(routeMessage(compileRoutes({ a: 'FROM /messages/modules/x/* INTO $upstream' }), msg())).toEqual([]);
  });
});

describe('route errors', () => {
  it('names the route and column with a caret line', () => {
    const e = syntaxError('FROM /messages/* WHER x INTO $upstream', 'toUp');
    expect(e).toBeInstanceOf(EnclaveEdgeError);
    expect(e.code).toBe('CONFIG_INVALID');
    expect(e.route).toBe('toUp');
    expect(e.column).toBe(18);
    expect(e.message).toBe(
      'route "toUp" is invalid at column 18: expected WHERE or INTO, found "WHER"\n' +
        '  FROM /messages/* WHER x INTO $upstream\n' +
        '                   ^',
    );
    expect(e.detail).toEqual({ route: 'toUp', column: 18, reason: 'expected WHERE or INTO, found "WHER"' });
  });

  const cases: [string, number, RegExp][] = [
    ['SELECT * INTO $upstream', 1, /expected FROM, found "SELECT"/],
    ['FRM /* INTO $upstream', 1, /expected FROM/],
    ['FROM', 5, /expected a source/],
    ['FROM messages/* INTO $upstream', 6, /must start with "\/"/],
    ['FROM /messages/devices/* INTO $upstream', 6, /unknown source.*expected one of \/\*, \/messages\/\*/],
    ['FROM /messages/modules/a/outputs INTO $upstream', 6, /unknown source/],
    ['FROM /* INTO', 13, /expected a sink/],
    ['FROM /* INTO $downstream', 14, /expected a sink/],
    ['FROM /* INTO BrokeredEndpoint("/modules/a/outputs/b")', 31, /must look like "\/modules\/\{module\}\/inputs\/\{input\}"/],
    ['FROM /* INTO BrokeredEndpoint("/modules/a/inputs/b"', 52, /expected "\)" after the endpoint/],
    ['FROM /* INTO BrokeredEndpoint /modules/a/inputs/b', 31, /expected "\(" after BrokeredEndpoint/],
    ['FROM /* INTO $upstream extra', 24, /unexpected "extra" after the sink/],
    ['FROM /* WHERE INTO $upstream', 15, /expected a condition after WHERE/],
    ["FROM /* WHERE a = INTO $upstream", 19, /expected a value, property or function, found "INTO"/],
    ["FROM /* WHERE a = 'x INTO $upstream", 19, /unterminated string/],
    ['FROM /* WHERE (a = 1 INTO $upstream', 22, /expected "\)", found "INTO"/],
    ['FROM /* WHERE a = 1 b = 2 INTO $upstream', 21, /expected INTO or an operator/],
    ['FROM /* WHERE $nope = 1 INTO $upstream', 15, /unknown system property "\$nope"/],
    ['FROM /* WHERE FOO(a) INTO $upstream', 15, /unknown function "FOO"/],
    ['FROM /* WHERE IS_DEFINED(a, b) INTO $upstream', 15, /IS_DEFINED takes 1 argument, got 2/],
    ['FROM /* WHERE a # 1 INTO $upstream', 17, /unexpected character "#"/],
    ['FROM /* WHERE a = 12abc INTO $upstream', 21, /malformed number/],
    ['FROM /* WHERE [] = 1 INTO $upstream', 15, /empty "\[\]" property name/],
    ['FROM /* WHERE a AND INTO $upstream', 21, /expected a value/],
  ];
  it.each(cases)('%s → column %i', (text, column, reason) => {
    const e = syntaxError(text);
    expect(e.column).toBe(column);
    expect(e.message).toMatch(reason);
    expect(e.message.split('\n')[2]).toBe('  ' + ' '.repeat(column - 1) + '^');
  });

  it('rejects bad priority and TTL, and route objects without text', () => {
    expect(() => compileRoutes({ p: { route: 'FROM /* INTO $upstream', priority: 10 } })).toThrow(/route "p": priority must be an integer from 0 to 9/);
    expect(() => compileRoutes({ t: { route: 'FROM /* INTO $upstream', timeToLiveSecs: -1 } })).toThrow(/route "t": timeToLiveSecs must be a non-negative integer/);
    expect(() => compileRoutes({ e: { route: '' } })).toThrow(/route "e" is invalid at column 1: route is empty/);
    expect(() => compileRoutes({ n: { route: 5 } as never })).toThrow(/route "n" has no route text/);
  });

  it('reports the first bad route among good ones', () => {
    expect(() => compileRoutes({ good: 'FROM /* INTO $upstream', bad: 'FROM /* INTO nowhere' })).toThrow(/^route "bad" is invalid at column 14/);
  });
});

describe('robustness', () => {
  it('refuses absurdly nested conditions with a syntax error, not a stack overflow', () => {
    const deep = 'FROM /* WHERE ' + '('.repeat(5000) + 'a = 1' + ')'.repeat(5000) + ' INTO $upstream';
    const e = syntaxError(deep);
    expect(e.reason).toBe('condition is nested too deeply (more than 64 levels)');
    const nots = syntaxError('FROM /* WHERE ' + 'NOT '.repeat(100) + 'a = 1 INTO $upstream');
    expect(nots.reason).toMatch(/nested too deeply/);
    expect(one('FROM /* WHERE ' + '('.repeat(60) + "a = '1'" + ')'.repeat(60) + ' INTO $upstream').matches(msg({ properties: { a: '1' } }))).toBe(true);
  });

  it('any text either compiles or fails with a RouteSyntaxError whose column lies inside it', () => {
    const alphabet = ["FROM", "WHERE", "INTO", "/*", "/messages/*", "$upstream", "BrokeredEndpoint", '("/modules/a/inputs/b")', "(", ")", "'x'", '"y"', "=", "<>", "<", "AND", "OR", "NOT", "IS_DEFINED", "$body.a", "$contentType", "a", "1.5", ",", "[p q]", "#", " "];
    let seed = 42;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    let compiled = 0;
    for (let n = 0; n < 3000; n++) {
      const len = 1 + Math.floor(rnd() * 10);
      const text = Array.from({ length: len }, () => alphabet[Math.floor(rnd() * alphabet.length)]).join(' ');
      try {
        const r = one(text);
        compiled++;
        expect(typeof r.matches(msg())).toBe('boolean');
      } catch (err) {
        if (!(err instanceof RouteSyntaxError)) throw new Error(`"${text}" threw ${String(err)}`);
        expect(err.column).toBeGreaterThanOrEqual(1);
        expect(err.column).toBeLessThanOrEqual(text.length + 1);
      }
    }
    expect(compiled).toBeGreaterThanOrEqual(0);
  });
});
