// The console page: Preact components written with htm (no build step), uPlot for the latency chart.
// Everything it shows comes from the console server's /api (which reads the IoT Hub service API);
// the page holds no credentials — the HttpOnly cookie authenticates it.
import { h, render } from 'preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import htm from 'htm';
import uPlot from 'uplot';

const html = htm.bind(h);
const KEEP = 300;
const BAD = new Set(['revoked', 'rejected', 'failed']);

async function api(path, init) {
  const r = await fetch(path, init && { ...init, headers: { 'content-type': 'application/json' }, body: JSON.stringify(init.body) });
  const body = await r.json().catch(() => ({ error: { code: 'BAD_FORMAT', message: `HTTP ${r.status}` } }));
  if (!r.ok) throw Object.assign(new Error(body?.error?.message ?? `HTTP ${r.status}`), { code: body?.error?.code });
  return body;
}

const short = (hex) => (typeof hex === 'string' ? `${hex.slice(0, 12)}…` : '—');
const bodyOf = (e) => {
  if (typeof e.body !== 'string') return e.body;
  try {
    return JSON.parse(e.body);
  } catch {
    return e.body;
  }
};

/** Per-TA series from ta-runtime's metrics.invocations events: calls/s, and count-weighted p50/p95 across its commands. */
function latencySeries(events) {
  const byTa = new Map();
  for (const e of events) {
    if (e.moduleId !== 'ta-runtime' || e.properties?.type !== 'metrics.invocations') continue;
    const m = bodyOf(e);
    if (!m || !Array.isArray(m.stats)) continue;
    const t = Date.parse(m.to) / 1000;
    const agg = new Map();
    for (const s of m.stats) {
      const a = agg.get(s.ta) ?? { count: 0, p50: 0, p95: 0 };
      a.count += s.count;
      a.p50 += s.p50Ms * s.count;
      a.p95 += s.p95Ms * s.count;
      agg.set(s.ta, a);
    }
    for (const [ta, a] of agg) {
      const rows = byTa.get(ta) ?? [];
      rows.push([t, a.count / (m.intervalSec || 1), a.count ? a.p50 / a.count : 0, a.count ? a.p95 / a.count : 0]);
      byTa.set(ta, rows);
    }
  }
  return byTa;
}

function Modules({ modules }) {
  if (!modules.length) return html`<p class="muted">no module status (a real hub does not report processes)</p>`;
  return html`<table id="modules"><thead><tr><th>module</th><th>run</th><th>state</th><th>connection</th><th>pid</th><th>restarts</th></tr></thead>
    <tbody>${modules.map((m) => html`<tr data-module=${m.name}><td>${m.name}</td><td>${m.run}</td><td>${m.process?.state ?? m.status}</td>
      <td class=${m.connected ? 'ok' : 'bad'}>${m.connected ? 'connected' : 'not connected'}</td><td>${m.process?.pid ?? '—'}</td><td>${m.process?.restarts ?? 0}</td></tr>`)}</tbody></table>`;
}

function TAs({ tas }) {
  const names = Object.keys(tas).sort();
  if (!names.length) return html`<p class="muted">ta-runtime reports no TAs yet</p>`;
  return html`<table id="tas"><thead><tr><th>TA</th><th>status</th><th>version</th><th>measurement</th><th>signer</th><th>SVN</th><th>debug</th><th>last error</th></tr></thead>
    <tbody>${names.map((n) => {
      const t = tas[n] ?? {};
      return html`<tr data-ta=${n} data-status=${t.status} class=${BAD.has(t.status) ? 'row-bad' : t.lastError ? 'row-warn' : ''}>
        <td>${n}</td><td><span class=${`badge ${t.status}`}>${t.status}</span></td><td>${t.version ?? '—'}</td>
        <td title=${t.measurement ?? ''}><code>${short(t.measurement)}</code></td><td title=${t.signerId ?? ''}><code>${short(t.signerId)}</code></td>
        <td>${t.svn ?? '—'}</td><td>${t.debug ? 'DEBUG' : 'no'}</td><td class="err">${t.lastError ?? ''}</td></tr>`;
    })}</tbody></table>`;
}

function Invoke({ onDone }) {
  const [module, setModule] = useState('host-module');
  const [method, setMethod] = useState('invokeTA');
  const [payload, setPayload] = useState('{"ta":"hello","command":"ping"}');
  const [out, setOut] = useState(null);
  async function go(ev) {
    ev.preventDefault();
    let body;
    try {
      body = payload.trim() ? JSON.parse(payload) : null;
    } catch (e) {
      return setOut({ error: `payload is not JSON: ${e.message}` });
    }
    setOut({ pending: true });
    try {
      setOut(await api('/api/invoke', { method: 'POST', body: { module, method, payload: body } }));
      onDone?.();
    } catch (e) {
      setOut({ error: `${e.code ?? 'ERROR'}: ${e.message}` });
    }
  }
  return html`<form id="invoke" onSubmit=${go}>
    <label>module <input name="module" value=${module} onInput=${(e) => setModule(e.target.value)} /></label>
    <label>method <input name="method" value=${method} onInput=${(e) => setMethod(e.target.value)} /></label>
    <label class="wide">payload <textarea name="payload" rows="2" onInput=${(e) => setPayload(e.target.value)}>${payload}</textarea></label>
    <button type="submit">invoke</button>
    <pre id="invoke-result" data-status=${out?.status ?? ''}>${out === null ? '' : out.pending ? '…' : out.error ?? `status ${out.status}\n${JSON.stringify(out.payload, null, 2)}`}</pre>
  </form>`;
}

function Latency({ events }) {
  const series = useMemo(() => latencySeries(events), [events]);
  const tas = [...series.keys()].sort();
  const [chosen, setChosen] = useState('');
  const ta = chosen && series.has(chosen) ? chosen : tas[0];
  const rows = ta ? series.get(ta) : [];
  const box = useRef(null);
  const plot = useRef(null);
  useEffect(() => {
    const data = [rows.map((r) => r[0]), rows.map((r) => r[1]), rows.map((r) => r[2]), rows.map((r) => r[3])];
    if (!plot.current && box.current) {
      plot.current = new uPlot({
        width: 640, height: 220,
        series: [{}, { label: 'calls/s', stroke: '#2b6cb0', scale: 'rate' }, { label: 'p50 ms', stroke: '#2f855a', scale: 'ms' }, { label: 'p95 ms', stroke: '#c05621', scale: 'ms' }],
        axes: [{}, { scale: 'ms', label: 'ms' }, { scale: 'rate', side: 1, label: 'calls/s', grid: { show: false } }],
        scales: { x: { time: true } },
      }, data, box.current);
    } else plot.current?.setData(data);
  }, [rows]);
  useEffect(() => () => plot.current?.destroy(), []);
  return html`<div id="latency" data-ta=${ta ?? ''} data-points=${rows.length}>
    <label>TA <select onChange=${(e) => setChosen(e.target.value)}>${tas.map((t) => html`<option selected=${t === ta}>${t}</option>`)}</select></label>
    <span class="muted">${rows.length ? `${rows.length} interval(s) from ta-runtime's metrics.invocations events` : 'waiting for the first metrics.invocations event (every metricsIntervalSec)'}</span>
    <div ref=${box}></div></div>`;
}

function Telemetry({ events }) {
  const [filter, setFilter] = useState('');
  const shown = useMemo(() => {
    const f = filter.toLowerCase();
    const rows = [];
    for (let i = events.length - 1; i >= 0 && rows.length < 100; i--) {
      const e = events[i];
      const text = `${e.moduleId} ${e.output ?? ''} ${e.properties?.type ?? ''} ${typeof e.body === 'string' ? e.body : JSON.stringify(e.body)}`;
      if (!f || text.toLowerCase().includes(f)) rows.push([e, text]);
    }
    return rows;
  }, [events, filter]);
  return html`<div id="telemetry" data-count=${events.length}>
    <input id="telemetry-filter" placeholder="filter (module, output, type, body)" value=${filter} onInput=${(e) => setFilter(e.target.value)} />
    <ol>${shown.map(([e]) => html`<li><time>${e.enqueuedTimeUtc?.slice(11, 23)}</time> <b>${e.moduleId}</b>${e.output ? ` → ${e.output}` : ''} <span class="type">${e.properties?.type ?? ''}</span>
      <code>${(typeof e.body === 'string' ? e.body : JSON.stringify(e.body)).slice(0, 240)}</code></li>`)}</ol></div>`;
}

function Attest({ tas }) {
  const names = Object.keys(tas).filter((n) => tas[n]?.status === 'loaded').sort();
  const [ta, setTa] = useState('');
  const [allowEmulated, setEmulated] = useState(false);
  const [allowDebug, setDebug] = useState(false);
  const [out, setOut] = useState(null);
  const chosen = ta || names[0] || '';
  async function go(ev) {
    ev.preventDefault();
    setOut({ pending: true });
    try {
      setOut(await api('/api/attest', { method: 'POST', body: { ta: chosen, policy: { allowEmulated, allowDebug } } }));
    } catch (e) {
      setOut({ error: { code: e.code, message: e.message } });
    }
  }
  const v = out?.verdict;
  const verdict = out?.pending ? '…' : v ? (v.accepted ? 'ACCEPTED' : `REJECTED (${v.reason}): ${v.message}`) : out?.error ? `${out.error.code}: ${out.error.message}` : '';
  return html`<form id="attest" onSubmit=${go}>
    <label>TA <select name="ta" onChange=${(e) => setTa(e.target.value)}>${names.map((n) => html`<option selected=${n === chosen}>${n}</option>`)}</select></label>
    <label><input type="checkbox" name="allowEmulated" checked=${allowEmulated} onChange=${(e) => setEmulated(e.target.checked)} /> allow emulated</label>
    <label><input type="checkbox" name="allowDebug" checked=${allowDebug} onChange=${(e) => setDebug(e.target.checked)} /> allow debug</label>
    <button type="submit" disabled=${!chosen}>fetch evidence and verify</button>
    <p id="attest-verdict" class=${v ? (v.accepted ? 'ok' : 'bad') : ''}>${verdict}</p>
    ${v?.claims ? html`<pre id="attest-claims">${JSON.stringify(v.claims, null, 2)}</pre>` : null}
  </form>`;
}

function Twin() {
  const [module, setModule] = useState('ta-runtime');
  const [twin, setTwin] = useState(null);
  const [patch, setPatch] = useState('{"logLevel":"info"}');
  const [msg, setMsg] = useState('');
  const load = () => api(`/api/twin/${encodeURIComponent(module)}`).then(setTwin, (e) => setMsg(`${e.code}: ${e.message}`));
  useEffect(() => void load(), [module]);
  async function apply(ev) {
    ev.preventDefault();
    let body;
    try {
      body = JSON.parse(patch);
    } catch (e) {
      return setMsg(`patch is not JSON: ${e.message}`);
    }
    try {
      await api(`/api/twin/${encodeURIComponent(module)}`, { method: 'PATCH', body });
      setMsg('applied');
      load();
    } catch (e) {
      setMsg(`${e.code}: ${e.message}`);
    }
  }
  return html`<form id="twin" onSubmit=${apply}>
    <label>module <input value=${module} onChange=${(e) => setModule(e.target.value)} /></label>
    <label class="wide">desired patch <textarea name="patch" rows="2" onInput=${(e) => setPatch(e.target.value)}>${patch}</textarea></label>
    <button type="submit">apply patch</button> <span id="twin-message">${msg}</span>
    <details><summary>twin of ${module}</summary><pre id="twin-json">${twin ? JSON.stringify(twin.properties ?? twin, null, 2) : '…'}</pre></details>
  </form>`;
}

function App() {
  const [overview, setOverview] = useState(null);
  const [events, setEvents] = useState([]);
  const [live, setLive] = useState(false);
  const [problem, setProblem] = useState('');
  const refresh = () => api('/api/overview').then((o) => (setOverview(o), setProblem('')), (e) => setProblem(`${e.code}: ${e.message}`));
  useEffect(() => {
    refresh();
    const timer = setInterval(refresh, 2000);
    let buffered = [];
    api('/api/upstream').then((initial) => setEvents((cur) => [...initial, ...cur].slice(-KEEP)), () => {});
    const es = new EventSource('/api/events');
    es.onopen = () => setLive(true);
    es.onerror = () => setLive(false);
    es.addEventListener('upstream', (m) => {
      const e = JSON.parse(m.data);
      buffered.push(e);
      if (typeof e.properties?.type === 'string' && e.properties.type.startsWith('ta.')) refresh();
    });
    es.addEventListener('problem', (m) => setProblem(JSON.parse(m.data).message));
    // Batch renders: sensors and metrics can arrive many times a second.
    const flush = setInterval(() => {
      if (!buffered.length) return;
      const add = buffered;
      buffered = [];
      setEvents((cur) => [...cur, ...add].slice(-KEEP));
    }, 250);
    return () => (clearInterval(timer), clearInterval(flush), es.close());
  }, []);
  if (!overview) return html`<p class="muted">${problem || 'loading…'}</p>`;
  return html`<header><h1>enclave-edge</h1><span>device <b id="device">${overview.deviceId}</b></span>
      <span class=${live ? 'ok' : 'bad'} id="live">${live ? 'live' : 'reconnecting…'}</span>${problem ? html`<span class="bad">${problem}</span>` : null}</header>
    <main>
      <section><h2>Modules</h2><${Modules} modules=${overview.modules} /></section>
      <section><h2>Trusted applications</h2><${TAs} tas=${overview.tas} /></section>
      <section><h2>Latency and call rate</h2><${Latency} events=${events} /></section>
      <section><h2>Invoke</h2><${Invoke} onDone=${refresh} /></section>
      <section><h2>Attestation</h2><${Attest} tas=${overview.tas} /></section>
      <section><h2>Telemetry ($upstream)</h2><${Telemetry} events=${events} /></section>
      <section><h2>Twin</h2><${Twin} /></section>
    </main>`;
}

render(html`<${App} />`, document.getElementById('app'));
