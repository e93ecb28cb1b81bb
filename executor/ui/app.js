// The executor's dashboard: one page of plain JavaScript over the HTTP API.
//
// Every value from the API, a function or a user is put in the page as text (h() makes
// text nodes; nothing is ever parsed as HTML). The API token, when the executor has one,
// is held in this page's memory only and sent as a bearer header: not in a URL, a cookie
// or storage, which a function's own page (served from this origin, under /r/) could read.
'use strict';

const ui = {
  token: null,      // the API token, once given
  open: null,       // true: the executor has no token set
  page: null,       // the page shown: its stop() ends its timers
};

// -- building the page -----------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else if (name === 'text') el.textContent = String(value);
    else if (name === 'value') el.value = value;
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

const SVG = 'http://www.w3.org/2000/svg';
function s(tag, attrs, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs || {})) el.setAttribute(name, String(value));
  if (text !== undefined) el.textContent = String(text);
  return el;
}

function show(...children) {
  const main = document.getElementById('main');
  main.replaceChildren();
  append(main, children);
}

function message(text, kind) {
  return h('div', { class: `message ${kind || 'error'}`, role: kind === 'ok' ? 'status' : 'alert' }, text);
}

function link(hash, text) {
  return h('a', { href: hash }, text);
}

function enc(part) {
  return encodeURIComponent(part);
}

function routeHash(app, path) {
  return `#/route/${enc(app)}${path.split('/').map(enc).join('/')}`;
}

function apiRoute(app, path) {
  return `/v1/apps/${enc(app)}/routes${path.split('/').map(enc).join('/')}`;
}

function fmt(value, digits) {
  if (value === null || value === undefined || Number.isNaN(value)) return '–';
  if (typeof value !== 'number') return String(value);
  if (Number.isInteger(value) && digits === undefined) return String(value);
  const d = digits === undefined ? (Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2) : digits;
  return value.toFixed(d);
}

// -- the API ---------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, text) {
    super(text);
    this.status = status;
  }
}

async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (ui.token) headers.Authorization = `Bearer ${ui.token}`;
  const init = { method, headers, cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  let data = null;
  try {
    data = await response.json();
  } catch (e) {
    data = null;
  }
  if (response.status === 401) {
    ui.token = null;
    showLogin(data && data.error ? data.error.message : 'the API needs its token');
    throw new ApiError(401, 'API token needed');
  }
  if (!response.ok) {
    const text = data && data.error ? data.error.message : `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, text);
  }
  return { data, headers: response.headers };
}

// A 400's message names its field ("route.memory: must be between ..."): put it there.
function fieldOf(text) {
  const found = /^(?:route|app)\.([a-z_]+)/.exec(text);
  return found ? found[1] : null;
}

// -- access ----------------------------------------------------------------------------

async function probe() {
  const response = await fetch('/v1/apps', { headers: { Accept: 'application/json' }, cache: 'no-store' });
  ui.open = response.status !== 401;
  showAccess();
  return ui.open;
}

function showAccess() {
  const access = document.getElementById('access');
  access.className = ui.open ? 'open' : '';
  if (ui.open) {
    access.textContent = 'The API is open: no EXECUTOR_API_TOKEN is set, anyone who reaches this port can change it';
  } else if (ui.token) {
    access.replaceChildren('Signed in with the API token · ', h('a', { href: '#/', onclick: signOut }, 'sign out'));
  } else {
    access.textContent = 'The API needs its token';
  }
}

function signOut(event) {
  event.preventDefault();
  ui.token = null;
  showLogin();
}

function showLogin(reason) {
  stopPage();
  showAccess();
  const input = h('input', { type: 'password', name: 'token', autocomplete: 'off', id: 'token' });
  const status = h('div');
  const form = h('form', { class: 'card login', onsubmit: async (event) => {
    event.preventDefault();
    const given = input.value.trim();
    const response = await fetch('/v1/apps', { headers: { Authorization: `Bearer ${given}` }, cache: 'no-store' });
    if (response.status === 401) {
      status.replaceChildren(message('Wrong API token.'));
      return;
    }
    ui.token = given;
    showAccess();
    route();
  } },
  h('h1', { text: 'API token' }),
  h('p', { class: 'muted' }, 'This executor has EXECUTOR_API_TOKEN set. The token stays in this page\'s memory and goes in an Authorization header.'),
  reason ? message(reason) : null,
  h('p', {}, input),
  status,
  h('button', { type: 'submit' }, 'Sign in'));
  show(form);
  input.focus();
}

// -- pages -----------------------------------------------------------------------------

function stopPage() {
  if (ui.page && ui.page.stop) ui.page.stop();
  ui.page = null;
}

async function route() {
  stopPage();
  const hash = location.hash.replace(/^#/, '') || '/';
  const [where, query] = hash.split('?');
  const parts = where.split('/').slice(1).map((p) => decodeURIComponent(p));
  for (const a of document.querySelectorAll('header nav a')) {
    a.classList.toggle('current', a.dataset.page === (parts[0] || 'live') || (a.dataset.page === 'routes' && parts[0] === 'route'));
  }
  if (!ui.open && !ui.token) {
    showLogin();
    return;
  }
  const params = new URLSearchParams(query || '');
  const page = { stop: null };
  ui.page = page;
  try {
    if (parts[0] === '' || parts[0] === undefined) await livePage(page);
    else if (parts[0] === 'apps' && parts.length === 1) await appsPage();
    else if (parts[0] === 'apps') await appPage(page, parts[1]);
    else if (parts[0] === 'routes') await routesPage(page);
    else if (parts[0] === 'new-route') await routeForm(parts[1], null);
    else if (parts[0] === 'route') await routePage(page, parts[1], '/' + parts.slice(2).join('/'));
    else if (parts[0] === 'calls') await callsPage(parts[1], params);
    else if (parts[0] === 'call') await callPage(parts[1], parts[2]);
    else show(h('h1', { text: 'Not found' }), h('p', {}, 'No page ', h('code', { text: hash }), '.'));
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return;
    show(h('h1', { text: 'Something went wrong' }), message(e.message));
  }
}

// -- live ------------------------------------------------------------------------------

const WINDOWS = [300, 600, 900];

// Polls /v1/stats once a second: `after` the last second it has, so each poll carries
// only the new ones; `route` (app/path) for one route's part; `after` to start from
// (the routes page wants no history).
function follow(page, options, onUpdate) {
  let seconds = [];
  let last = options.after === undefined ? null : options.after;
  let timer = null;
  let stopped = false;
  async function poll() {
    const q = new URLSearchParams();
    if (last !== null) q.set('after', last);
    if (options.route) q.set('route', options.route);
    try {
      const { data } = await api('GET', `/v1/stats?${q}`);
      if (stopped) return;
      seconds = seconds.concat(data.seconds).slice(-data.window);
      if (seconds.length) last = seconds[seconds.length - 1].t;
      onUpdate(data, seconds);
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) return;
    }
    if (!stopped) timer = setTimeout(poll, 1000);
  }
  page.stop = () => { stopped = true; clearTimeout(timer); };
  return poll();
}

function statusClass(code) {
  const n = Number(code);
  return n >= 500 ? '5xx' : n >= 400 ? '4xx' : 'ok';
}

function seriesOf(seconds, budget) {
  const out = {
    ok: [], '4xx': [], '5xx': [],
    warm50: [], warm99: [], cold50: [], cold99: [], fresh50: [], fresh99: [],
    share: [], wait50: [], wait99: [], starts: [], evicted: [], failed: [],
    reserved: [], budget: [], idle: [], busy: [], starting: [], waiting: [],
  };
  for (const sec of seconds) {
    const t = sec.t;
    const byClass = { ok: 0, '4xx': 0, '5xx': 0 };
    for (const [code, n] of Object.entries(sec.calls || {})) byClass[statusClass(code)] += n;
    for (const k of ['ok', '4xx', '5xx']) out[k].push([t, byClass[k]]);
    const lat = sec.latency || {};
    let started = 0;
    for (const kind of ['warm', 'cold', 'fresh']) {
      const v = lat[kind];
      out[`${kind}50`].push([t, v ? v[1] : null]);
      out[`${kind}99`].push([t, v ? v[2] : null]);
      if (v) started += v[0];
    }
    out.share.push([t, started ? (100 * (lat.warm ? lat.warm[0] : 0)) / started : null]);
    out.wait50.push([t, sec.wait ? sec.wait[0] : null]);
    out.wait99.push([t, sec.wait ? sec.wait[1] : null]);
    const events = sec.events || {};
    out.starts.push([t, sec.starts || 0]);
    out.evicted.push([t, events.evicted || 0]);
    out.failed.push([t, (events.oom || 0) + (events.crash || 0) + (events.timeout || 0) + (events.start_failed || 0)]);
    out.reserved.push([t, sec.reserved || 0]);
    out.budget.push([t, sec.budget !== undefined ? sec.budget : budget]);
    const pool = sec.pool || [0, 0, 0, 0];
    out.idle.push([t, pool[0]]);
    out.busy.push([t, pool[1]]);
    out.starting.push([t, pool[2]]);
    out.waiting.push([t, pool[3]]);
  }
  return out;
}

// A line chart in SVG: lines broken where a value is missing; y from 0 (or log10).
function chart(title, lines, opts) {
  const o = Object.assign({ unit: '', log: false, width: 600, height: 150, span: 300 }, opts || {});
  const W = o.width, H = o.height, L = 64, B = 16, T = 8;
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': title });
  let tmax = 0;
  let vmax = 0, vmin = Infinity;
  for (const line of lines) for (const [t, v] of line.points) {
    tmax = Math.max(tmax, t);
    if (v !== null) { vmax = Math.max(vmax, v); if (v > 0) vmin = Math.min(vmin, v); }
  }
  const t0 = tmax - o.span;
  let y;
  let lo = 0, hi = vmax || 1;
  if (o.log) {
    lo = Math.pow(10, Math.floor(Math.log10(vmin === Infinity ? 0.1 : vmin)));
    hi = Math.pow(10, Math.ceil(Math.log10(Math.max(vmax, lo * 10))));
    y = (v) => H - B - ((Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * (H - B - T);
  } else {
    if (o.max) hi = Math.max(hi, o.max);
    y = (v) => H - B - (v / hi) * (H - B - T);
  }
  const x = (t) => L + ((t - t0) / o.span) * (W - L - 4);
  svg.appendChild(s('line', { class: 'axis', x1: L, y1: H - B, x2: W - 4, y2: H - B }));
  svg.appendChild(s('line', { class: 'axis', x1: L, y1: T, x2: L, y2: H - B }));
  svg.appendChild(s('text', { x: L - 4, y: T + 8, 'text-anchor': 'end' }, fmt(hi) + o.unit));
  svg.appendChild(s('text', { x: L - 4, y: H - B, 'text-anchor': 'end' }, fmt(lo) + o.unit));
  svg.appendChild(s('text', { x: L, y: H - 2 }, `-${o.span / 60} min`));
  svg.appendChild(s('text', { x: W - 4, y: H - 2, 'text-anchor': 'end' }, 'now'));
  const legend = h('div', { class: 'legend' });
  for (const line of lines) {
    let run = [];
    const flush = () => {
      if (run.length) svg.appendChild(s('polyline', { class: line.cls, points: run.join(' ') }));
      run = [];
    };
    let latest = null;
    for (const [t, v] of line.points) {
      if (t < t0) continue;
      if (v === null) { flush(); continue; }
      run.push(`${x(t).toFixed(1)},${y(v).toFixed(1)}`);
      latest = v;
    }
    flush();
    legend.appendChild(h('span', { class: line.cls.split(' ')[0] }, h('span', { class: 'swatch' }), `${line.name} `, h('b', { text: fmt(latest) + o.unit })));
  }
  return h('div', { class: 'chart' }, h('h3', { text: title }), svg, legend);
}

function liveCharts(series, span, budgetLine, withPool) {
  const charts = [
    chart('Calls/s by status', [
      { name: '< 400', cls: 's-ok', points: series.ok },
      { name: '4xx', cls: 's-4xx', points: series['4xx'] },
      { name: '5xx', cls: 's-5xx', points: series['5xx'] }], { span }),
    chart('Latency by start kind (p99 solid, p50 dashed)', [
      { name: 'warm p99', cls: 's-warm', points: series.warm99 },
      { name: 'warm p50', cls: 's-warm s-p50', points: series.warm50 },
      { name: 'fresh p99', cls: 's-fresh', points: series.fresh99 },
      { name: 'fresh p50', cls: 's-fresh s-p50', points: series.fresh50 },
      { name: 'cold p99', cls: 's-cold', points: series.cold99 },
      { name: 'cold p50', cls: 's-cold s-p50', points: series.cold50 }], { span, log: true, unit: ' ms' }),
    chart('Warm share', [{ name: 'warm', cls: 's-warm', points: series.share }], { span, unit: '%', max: 100 }),
    chart('Container wait', [
      { name: 'p99', cls: 's-4xx', points: series.wait99 },
      { name: 'p50', cls: 's-4xx s-p50', points: series.wait50 }], { span, log: true, unit: ' ms' }),
    chart('Starts and evictions per s', [
      { name: 'starts', cls: 's-cold', points: series.starts },
      { name: 'evicted', cls: 's-4xx', points: series.evicted },
      { name: 'oom, crash, timeout, failed start', cls: 's-5xx', points: series.failed }], { span }),
    chart('Memory reserved', [
      { name: 'reserved', cls: 's-mem', points: series.reserved },
      budgetLine ? { name: 'budget', cls: 's-budget', points: series.budget } : null].filter(Boolean), { span, unit: ' MiB' }),
  ];
  if (withPool) {
    charts.push(chart('Containers', [
      { name: 'idle', cls: 's-idle', points: series.idle },
      { name: 'busy', cls: 's-busy', points: series.busy },
      { name: 'starting', cls: 's-starting', points: series.starting },
      { name: 'waiting calls', cls: 's-waiting', points: series.waiting }], { span }));
  }
  return h('div', { class: 'charts' }, charts);
}

function windowPicker(current, onChange) {
  const select = h('select', { name: 'window', onchange: () => onChange(Number(select.value)) },
    WINDOWS.map((w) => h('option', { value: w, selected: w === current }, `last ${w / 60} min`)));
  return select;
}

function containerList(containers) {
  return containers.map((c) => h('span', { class: `state ${c.state}`, title: c.id },
    `${c.state} ${fmt(c.age, 1)} s · ${c.calls} call${c.calls === 1 ? '' : 's'}`));
}

function poolsTable(pools) {
  const rows = pools.map((p) => h('tr', { 'data-route': `${p.app}${p.path}` },
    h('td', {}, link(routeHash(p.app, p.path), `${p.app}${p.path}`)),
    h('td', { text: p.format }),
    h('td', { class: 'num', text: p.idle }),
    h('td', { class: 'num', text: p.busy }),
    h('td', { class: 'num', text: p.starting }),
    h('td', { class: 'num', text: p.waiting }),
    h('td', { class: 'num', text: (p.idle + p.busy + p.starting) * p.memory }),
    h('td', {}, containerList(p.containers))));
  return h('table', { id: 'pools' },
    h('thead', {}, h('tr', {}, ['route', 'format', 'idle', 'busy', 'starting', 'waiting', 'MiB'].map((t, i) => h('th', { class: i > 1 ? 'num' : null, text: t })), h('th', { text: 'containers (age, calls)' }))),
    h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colspan: 8, class: 'muted', text: 'No pools: no route keeps containers now.' }))));
}

async function livePage(page) {
  let span = 300;
  const head = h('div', { class: 'row' });
  const charts = h('div');
  const pools = h('div');
  let latest = null;
  const draw = () => {
    if (!latest) return;
    const [data, seconds] = latest;
    const pct = data.budget_mib ? (100 * data.reserved_mib) / data.budget_mib : 0;
    const bar = h('div', { class: 'bar' }, h('div'));
    bar.firstChild.style.width = `${Math.min(100, pct).toFixed(1)}%`;
    head.replaceChildren(
      h('span', {}, 'node ', h('code', { text: data.node })),
      h('span', { id: 'reserved' }, `memory reserved ${data.reserved_mib} of ${data.budget_mib} MiB`), bar,
      windowPicker(span, (w) => { span = w; draw(); }));
    charts.replaceChildren(liveCharts(seriesOf(seconds, data.budget_mib), span, true, false));
    pools.replaceChildren(poolsTable(data.pools));
  };
  show(h('h1', { text: 'Live' }), head, charts, h('h2', { text: 'Pools' }), pools);
  await follow(page, {}, (data, seconds) => { latest = [data, seconds]; draw(); });
}

// -- apps ------------------------------------------------------------------------------

function configText(config) {
  return Object.entries(config || {}).map(([k, v]) => `${k}=${v}`).join('\n');
}

function parseConfig(text) {
  const config = {};
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const at = line.indexOf('=');
    if (at < 0) config[line.trim()] = '';
    else config[line.slice(0, at).trim()] = line.slice(at + 1);
  }
  return config;
}

function fieldRow(form, name, label, input, hint) {
  input.name = name;
  input.id = `f-${name}`;
  form.appendChild(h('label', { for: input.id, text: label }));
  form.appendChild(input);
  form.appendChild(h('span', { class: 'field-error', 'data-for': name }, hint ? h('span', { class: 'hint', text: hint }) : null));
}

function clearErrors(form) {
  for (const el of form.querySelectorAll('.invalid')) el.classList.remove('invalid');
  for (const el of form.querySelectorAll('.field-error .error-text, .form-error')) el.remove();
}

// The API's 400: beside its field when it names one, above the form's buttons otherwise.
function showError(form, text) {
  const field = fieldOf(text);
  const slot = field && form.querySelector(`.field-error[data-for="${field}"]`);
  if (slot) {
    form.querySelector(`[name="${field}"]`).classList.add('invalid');
    slot.prepend(h('span', { class: 'error-text', role: 'alert' }, text));
    return;
  }
  let general = form.querySelector('.form-error');
  if (!general) {
    general = h('div', { class: 'form-error' });
    form.querySelector('.actions').before(general);
  }
  general.replaceChildren(message(text));
}

async function appsPage() {
  const [{ data: apps }, { data: routes }] = await Promise.all([api('GET', '/v1/apps'), api('GET', '/v1/routes')]);
  const counts = {};
  for (const r of routes.routes) counts[r.app_name] = (counts[r.app_name] || 0) + 1;
  const status = h('div', { class: 'actions' });
  const form = h('form', { class: 'fields', id: 'new-app' });
  fieldRow(form, 'name', 'Name', h('input', { type: 'text' }), 'letters, digits, _ and -');
  fieldRow(form, 'config', 'Config', h('textarea', { placeholder: 'KEY=value, one a line' }), 'env vars of all its routes');
  form.appendChild(status);
  status.appendChild(h('button', { type: 'submit' }, 'Create app'));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    const app = { name: form.elements.name.value, config: parseConfig(form.elements.config.value) };
    try {
      await api('POST', '/v1/apps', { app });
      location.hash = `#/apps/${enc(app.name)}`;
    } catch (e) {
      if (e.status !== 401) showError(form, e.message);
    }
  });
  const rows = apps.apps.map((a) => h('tr', {},
    h('td', {}, link(`#/apps/${enc(a.name)}`, a.name)),
    h('td', { class: 'num', text: counts[a.name] || 0 }),
    h('td', { class: 'num', text: Object.keys(a.config).length }),
    h('td', { text: a.created_at }),
    h('td', {}, link(`#/calls/${enc(a.name)}`, 'calls'))));
  show(h('h1', { text: 'Apps' }),
    h('table', {}, h('thead', {}, h('tr', {}, ['app', 'routes', 'config', 'created', ''].map((t, i) => h('th', { class: i && i < 3 ? 'num' : null, text: t })))),
      h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colspan: 5, class: 'muted', text: 'No apps yet.' })))),
    h('h2', { text: 'New app' }), h('div', { class: 'card' }, form));
}

async function appPage(page, name) {
  const [{ data: one }, { data: routes }] = await Promise.all([
    api('GET', `/v1/apps/${enc(name)}`), api('GET', `/v1/apps/${enc(name)}/routes`)]);
  const app = one.app;
  const status = h('div', { class: 'actions' });
  const form = h('form', { class: 'fields', id: 'app-config' });
  fieldRow(form, 'config', 'Config', h('textarea', { value: configText(app.config) }), 'KEY=value, one a line');
  form.appendChild(status);
  const note = h('span');
  status.append(h('button', { type: 'submit' }, 'Save config'), note);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    note.replaceChildren();
    try {
      await api('PATCH', `/v1/apps/${enc(name)}`, { app: { config: parseConfig(form.elements.config.value) } });
      note.replaceChildren(message('Saved.', 'ok'));
    } catch (e) {
      if (e.status !== 401) showError(form, e.message);
    }
  });
  const table = routesTable(routes.routes);
  const deleted = h('div');
  const remove = h('button', { class: 'danger', type: 'button', onclick: async () => {
    const force = routes.routes.length > 0;
    if (!confirm(force ? `Delete app ${name} and its ${routes.routes.length} route(s)?` : `Delete app ${name}?`)) return;
    try {
      await api('DELETE', `/v1/apps/${enc(name)}${force ? '?force=true' : ''}`);
      location.hash = '#/apps';
    } catch (e) {
      if (e.status !== 401) deleted.replaceChildren(message(e.message));
    }
  } }, 'Delete app');
  show(h('h1', {}, 'App ', h('code', { text: name })),
    h('p', { class: 'muted' }, `created ${app.created_at} · updated ${app.updated_at} · `, link(`#/calls/${enc(name)}`, 'its calls')),
    h('div', { class: 'card' }, form),
    h('h2', {}, 'Routes ', link(`#/new-route/${enc(name)}`, '+ new route')),
    table,
    h('p', {}, remove), deleted);
  livePoolCells(page, table);
}

// -- routes ----------------------------------------------------------------------------

function routesTable(routes) {
  const rows = routes.map((r) => h('tr', { 'data-route': `${r.app_name}${r.path}` },
    h('td', { text: r.app_name }),
    h('td', {}, link(routeHash(r.app_name, r.path), r.path)),
    h('td', { text: r.image }),
    h('td', { text: r.format }),
    h('td', { text: r.type }),
    h('td', { class: 'num', text: r.memory }),
    h('td', { class: 'num', text: r.min_warm }),
    h('td', { class: 'num', text: r.max_containers }),
    h('td', { class: 'num pool', text: '' })));
  return h('table', { id: 'routes' },
    h('thead', {}, h('tr', {}, ['app', 'path', 'image', 'format', 'type', 'MiB', 'min warm', 'max', 'idle / busy / starting / waiting'].map((t, i) => h('th', { class: i > 4 ? 'num' : null, text: t })))),
    h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colspan: 9, class: 'muted', text: 'No routes.' }))));
}

// Live pool counts in the routes table: only the cells of routes whose pool changed.
function updatePoolCells(rows, shown, pools) {
  const now = new Map(pools.map((p) => [`${p.app}${p.path}`, `${p.idle} / ${p.busy} / ${p.starting} / ${p.waiting}`]));
  for (const key of shown.keys()) {
    if (!now.has(key)) { rows.get(key).lastChild.textContent = ''; shown.delete(key); }
  }
  for (const [key, text] of now) {
    const row = rows.get(key);
    if (row && shown.get(key) !== text) { row.lastChild.textContent = text; shown.set(key, text); }
  }
}

// Keeps a routes table's pool cells live; `onFirst` once the first update is in.
function livePoolCells(page, table, onFirst) {
  const rows = new Map();
  for (const row of table.tBodies[0].rows) if (row.dataset.route) rows.set(row.dataset.route, row);
  const shown = new Map();
  let first = true;
  follow(page, { after: Math.floor(Date.now() / 1000) }, (d) => {
    updatePoolCells(rows, shown, d.pools);
    if (first && onFirst) onFirst();
    first = false;
  });
  return rows;
}

async function routesPage(page) {
  const { data } = await api('GET', '/v1/routes');
  const table = routesTable(data.routes);
  const filter = h('input', { type: 'text', placeholder: 'filter: app, path or image', id: 'filter' });
  show(h('h1', { text: `Routes (${data.routes.length})` }), h('div', { class: 'toolbar' }, filter), table);
  performance.mark('routes-ready');
  // The next frame painted, and the task after it: the page answers input from here.
  requestAnimationFrame(() => setTimeout(() => performance.mark('routes-interactive')));
  const rows = livePoolCells(page, table, () => performance.mark('routes-live'));
  filter.addEventListener('input', () => {
    const text = filter.value.toLowerCase();
    for (const row of rows.values()) row.classList.toggle('hidden', !!text && !row.textContent.toLowerCase().includes(text));
  });
}

const ROUTE_FIELDS = [
  ['image', 'Image', 'text', 'an image on the engine', 'executor/hello'],
  ['format', 'Format', ['default', 'http-stream', 'http'], 'default: a container a call; http-stream (Fn) and http (IronFunctions): hot'],
  ['type', 'Type', ['sync', 'async'], 'async: answered 202 with a call id'],
  ['memory', 'Memory', 'number', 'MiB, no swap', '128'],
  ['cpus', 'CPUs', 'text', 'a fraction of a CPU; empty: no limit'],
  ['timeout', 'Timeout', 'number', 'seconds a call may take, waiting included', '30'],
  ['idle_timeout', 'Idle timeout', 'text', 'seconds an idle hot container lives, or auto', '30'],
  ['min_warm', 'Min warm', 'number', 'containers kept started; empty: 1 for hot formats, 0 for default'],
  ['max_containers', 'Max containers', 'number', 'containers at once', '8'],
  ['config', 'Config', 'textarea', 'KEY=value, one a line'],
  ['headers', 'Headers', 'textarea', 'Name: value, one a line; added to every response'],
  ['network', 'Network', ['none', 'bridge'], ''],
  ['user', 'User', 'text', 'user[:group]; empty: the image\'s, or 65534 for root'],
  ['tmpfs_size', 'Tmpfs size', 'number', 'MiB of the writable /tmp', '64'],
  ['auth', 'Auth', ['none', 'token'], 'token: calls need the API token'],
  ['retries', 'Retries', 'number', 'async only: runs again after a 5xx', '0'],
  ['jwt_key', 'JWT key', 'password', 'IronFunctions\' per-route HS256 key; ******** keeps the one set'],
];

function headersText(headers) {
  const lines = [];
  for (const [name, values] of Object.entries(headers || {})) for (const v of values) lines.push(`${name}: ${v}`);
  return lines.join('\n');
}

// "Name: value" lines (the route's headers, the run panel's) as [name, value] pairs.
function headerPairs(text) {
  return text.split('\n').filter((line) => line.trim()).map((line) => {
    const at = line.indexOf(':');
    return at < 0 ? [line.trim(), ''] : [line.slice(0, at).trim(), line.slice(at + 1).trim()];
  });
}

function parseHeaderLines(text) {
  const headers = {};
  for (const [name, value] of headerPairs(text)) (headers[name] = headers[name] || []).push(value);
  return headers;
}

// Numbers as numbers; anything else as typed, for the API's own message about it.
function numberOr(text) {
  const t = text.trim();
  return /^-?\d+(\.\d+)?$/.test(t) ? Number(t) : t;
}

function routeInputs(form, route) {
  for (const [name, label, kind, hint, placeholder] of ROUTE_FIELDS) {
    let input;
    const current = route ? route[name] : undefined;
    if (Array.isArray(kind)) {
      input = h('select', {}, kind.map((v) => h('option', { value: v, selected: current === v }, v)));
    } else if (kind === 'textarea') {
      input = h('textarea', { value: name === 'config' ? configText(current) : headersText(current) });
    } else {
      const shown = current === null || current === undefined ? '' : String(current);
      input = h('input', { type: kind === 'password' ? 'password' : 'text', value: shown, placeholder, autocomplete: 'off', inputmode: kind === 'number' ? 'numeric' : null });
    }
    fieldRow(form, name, label, input, hint);
  }
}

function routePayload(form, isNew) {
  const f = form.elements;
  const route = {};
  if (isNew) route.path = f.path.value.trim();
  route.image = f.image.value.trim();
  for (const name of ['format', 'type', 'network', 'auth']) route[name] = f[name].value;
  for (const name of ['memory', 'timeout', 'max_containers', 'tmpfs_size', 'retries', 'min_warm']) {
    if (f[name].value.trim() !== '') route[name] = numberOr(f[name].value);
  }
  route.cpus = f.cpus.value.trim() === '' ? null : numberOr(f.cpus.value);
  const idle = f.idle_timeout.value.trim();
  if (idle !== '') route.idle_timeout = idle === 'auto' ? 'auto' : numberOr(idle);
  route.config = parseConfig(f.config.value);
  route.headers = parseHeaderLines(f.headers.value);
  route.user = f.user.value.trim() || null;
  route.jwt_key = f.jwt_key.value === '' ? null : f.jwt_key.value;
  return route;
}

async function routeForm(app, route) {
  const isNew = route === null;
  const form = h('form', { class: 'fields', id: 'route-form' });
  if (isNew) fieldRow(form, 'path', 'Path', h('input', { type: 'text', placeholder: '/hello' }), '/segment[/segment…], :name for a parameter');
  routeInputs(form, route);
  const status = h('div', { class: 'actions' });
  const note = h('span');
  status.append(h('button', { type: 'submit' }, isNew ? 'Create route' : 'Save route'), note);
  form.appendChild(status);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    note.replaceChildren();
    const payload = routePayload(form, isNew);
    try {
      if (isNew) {
        await api('POST', `/v1/apps/${enc(app)}/routes`, { route: payload });
        location.hash = routeHash(app, payload.path);
      } else {
        await api('PUT', apiRoute(app, route.path), { route: payload });
        note.replaceChildren(message('Saved.', 'ok'));
      }
    } catch (e) {
      if (e.status !== 401) showError(form, e.message);
    }
  });
  if (isNew) {
    show(h('h1', {}, 'New route of ', link(`#/apps/${enc(app)}`, app)), h('div', { class: 'card' }, form));
  }
  return form;
}

async function routePage(page, app, path) {
  const { data } = await api('GET', apiRoute(app, path));
  const route = data.route;
  const form = await routeForm(app, route);
  const live = h('div');
  const containers = h('div', { id: 'containers' });
  const remove = h('button', { class: 'danger', type: 'button', onclick: async () => {
    if (!confirm(`Delete route ${path} of ${app}?`)) return;
    await api('DELETE', apiRoute(app, path));
    location.hash = `#/apps/${enc(app)}`;
  } }, 'Delete route');
  let span = 300;
  let latest = null;
  const draw = () => {
    if (!latest) return;
    const [d, seconds] = latest;
    const pool = d.pools[0];
    const none = route.format === 'default' && !route.min_warm ? 'No pool: each call gets a new container.' : 'No containers now.';
    containers.replaceChildren(pool
      ? h('div', { class: 'row' }, h('span', { id: 'pool-counts' }, `idle ${pool.idle} · busy ${pool.busy} · starting ${pool.starting} · waiting ${pool.waiting}`),
        pool.containers.length ? containerList(pool.containers) : h('span', { class: 'muted', text: none }))
      : h('span', { class: 'muted', id: 'pool-counts', text: none }));
    live.replaceChildren(h('div', { class: 'toolbar' }, windowPicker(span, (w) => { span = w; draw(); })),
      liveCharts(seriesOf(seconds, d.budget_mib), span, false, true));
  };
  show(h('h1', {}, 'Route ', link(`#/apps/${enc(app)}`, app), h('code', { text: path })),
    h('p', { class: 'muted' }, `created ${route.created_at} · updated ${route.updated_at} · `, link(`#/calls/${enc(app)}?route=${enc(path)}`, 'its calls')),
    h('h2', { text: 'Run' }), runPanel(app, route),
    h('h2', { text: 'Containers' }), h('div', { class: 'card' }, containers),
    h('h2', { text: 'Live' }), live,
    h('h2', { text: 'Settings' }), h('div', { class: 'card' }, form),
    h('p', {}, remove));
  await follow(page, { route: `${app}${path}` }, (d, seconds) => { latest = [d, seconds]; draw(); });
}

// -- running a function ----------------------------------------------------------------

function shellQuote(text) {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

function curlFor(method, url, headers, body, withToken) {
  const parts = ['curl', '-i'];
  if (method !== 'GET' || body) parts.push('-X', method);
  for (const [name, value] of headers) parts.push('-H', shellQuote(`${name}: ${value}`));
  if (withToken) parts.push('-H', '"Authorization: Bearer $EXECUTOR_API_TOKEN"');
  if (body) parts.push('--data-binary', shellQuote(body));
  parts.push(shellQuote(url));
  return parts.join(' ');
}

function runPanel(app, route) {
  const method = h('select', { name: 'method' }, ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].map((m) => h('option', { value: m, selected: m === 'POST' }, m)));
  const headers = h('textarea', { name: 'headers', placeholder: 'Name: value, one a line' });
  const body = h('textarea', { name: 'body', placeholder: 'the request body' });
  const query = h('input', { type: 'text', name: 'query', placeholder: 'a=1&b=2' });
  const withToken = h('input', { type: 'checkbox', name: 'token', checked: route.auth === 'token' });
  const curl = h('pre', { id: 'curl' });
  const out = h('div', { id: 'run-output' });
  const url = () => `${location.origin}/r/${enc(app)}${route.path}${query.value.trim() ? `?${query.value.trim()}` : ''}`;
  const headerList = () => headerPairs(headers.value);
  const refreshCurl = () => { curl.textContent = curlFor(method.value, url(), headerList(), body.value, withToken.checked && !ui.open); };
  for (const el of [method, headers, body, query, withToken]) el.addEventListener('input', refreshCurl);
  const copy = h('button', { class: 'plain', type: 'button', onclick: async () => {
    try {
      await navigator.clipboard.writeText(curl.textContent);
      copy.textContent = 'Copied';
    } catch (e) {
      const range = document.createRange();
      range.selectNodeContents(curl);
      getSelection().removeAllRanges();
      getSelection().addRange(range);
      copy.textContent = 'Selected: copy it';
    }
  } }, 'Copy');
  const run = h('button', { type: 'button', id: 'run', onclick: async () => {
    run.disabled = true;
    out.replaceChildren(h('span', { class: 'muted', text: 'Running…' }));
    try {
      await runOnce(app, route, method.value, url(), headerList(), body.value, withToken.checked, out);
    } finally {
      run.disabled = false;
    }
  } }, 'Run');
  refreshCurl();
  const grid = h('form', { class: 'fields', onsubmit: (e) => e.preventDefault() },
    h('label', { text: 'Method' }), method, h('span'),
    h('label', { text: 'Query' }), query, h('span'),
    h('label', { text: 'Headers' }), headers, h('span'),
    h('label', { text: 'Body' }), body, h('span'),
    ui.open ? null : [h('label', { text: 'API token' }), h('label', {}, withToken, ' send it (auth: token routes)'), h('span')],
    h('div', { class: 'actions' }, run));
  return h('div', { class: 'card' }, grid, h('div', { class: 'row' }, h('b', { text: 'curl' }), copy), curl, out);
}

async function runOnce(app, route, method, url, headers, body, withToken, out) {
  const init = { method, headers: new Headers(), cache: 'no-store' };
  for (const [name, value] of headers) {
    try { init.headers.append(name, value); } catch (e) { out.replaceChildren(message(`header ${name}: ${e.message}`)); return; }
  }
  if (withToken && ui.token) init.headers.set('Authorization', `Bearer ${ui.token}`);
  if (body && method !== 'GET') init.body = body;
  const began = performance.now();
  let response;
  let text;
  try {
    response = await fetch(url, init);
    text = await response.text();
  } catch (e) {
    out.replaceChildren(message(`the call failed: ${e.message}`));
    return;
  }
  const total = performance.now() - began;
  const callId = response.headers.get('Fn-Call-Id');
  const facts = h('dl', { class: 'kv', id: 'run-facts' },
    h('dt', { text: 'status' }), h('dd', { id: 'run-status', text: `${response.status} ${response.statusText}` }),
    h('dt', { text: 'Executor-Start' }), h('dd', { id: 'run-start', text: response.headers.get('Executor-Start') || '–' }),
    h('dt', { text: 'wait' }), h('dd', { text: `${response.headers.get('Executor-Wait-Ms') || '–'} ms` }),
    h('dt', { text: 'total' }), h('dd', { text: `${total.toFixed(1)} ms (as this page saw it)` }),
    h('dt', { text: 'call' }), h('dd', {}, callId ? link(`#/call/${enc(app)}/${enc(callId)}`, callId) : '–'));
  const headerRows = [];
  response.headers.forEach((value, name) => headerRows.push(h('tr', {}, h('td', { text: name }), h('td', { text: value }))));
  out.replaceChildren(facts,
    h('h3', { text: 'Body' }), h('pre', { id: 'run-body', text: text }),
    h('details', {}, h('summary', { text: 'Headers' }), h('table', {}, h('tbody', {}, headerRows))));
  if (response.status === 202) {
    let id = callId;
    try { id = JSON.parse(text).call_id || callId; } catch (e) { /* keep the header's */ }
    if (id) {
      try {
        await followAsync(app, id, out);
      } catch (e) {
        if (e.status !== 401) out.appendChild(message(`following call ${id}: ${e.message}`));
      }
    }
  }
}

const ENDED = new Set(['success', 'error', 'timeout', 'cancelled']);

async function followAsync(app, id, out) {
  const state = h('p', { id: 'async-state' });
  out.appendChild(h('h3', {}, 'Async call ', link(`#/call/${enc(app)}/${enc(id)}`, id)));
  out.appendChild(state);
  const started = performance.now();
  while (performance.now() - started < 3600 * 1000 && document.body.contains(out)) {
    const { data } = await api('GET', `/v1/apps/${enc(app)}/calls/${enc(id)}`);
    const call = data.call;
    state.replaceChildren(h('span', { class: `state ${call.state}`, text: call.state }),
      call.http_status ? ` HTTP ${call.http_status}` : '', call.error ? ` · ${call.error}` : '');
    if (ENDED.has(call.state)) {
      if (call.state === 'success' || call.http_status) {
        const response = await fetch(`/v1/apps/${enc(app)}/calls/${enc(id)}/response`, { headers: ui.token ? { Authorization: `Bearer ${ui.token}` } : {} });
        if (response.ok) out.appendChild(h('pre', { id: 'async-body', text: await response.text() }));
      }
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

// -- calls -----------------------------------------------------------------------------

const CALL_FILTERS = [
  ['route', 'text', 'a route path'],
  ['state', ['', 'queued', 'running', 'success', 'error', 'timeout', 'cancelled']],
  ['start', ['', 'cold', 'warm', 'fresh', 'none']],
  ['since', 'text', 'RFC 3339 or unix seconds'],
];

async function callsPage(app, params) {
  const { data: apps } = await api('GET', '/v1/apps');
  if (!app) {
    if (!apps.apps.length) { show(h('h1', { text: 'Calls' }), h('p', { class: 'muted', text: 'No apps yet.' })); return; }
    app = apps.apps[0].name;
  }
  const pick = h('select', { name: 'app' }, apps.apps.map((a) => h('option', { value: a.name, selected: a.name === app }, a.name)));
  const inputs = CALL_FILTERS.map(([name, kind, hint]) => {
    const value = params.get(name) || '';
    const input = Array.isArray(kind)
      ? h('select', { name }, kind.map((v) => h('option', { value: v, selected: v === value }, v || `any ${name}`)))
      : h('input', { type: 'text', name, placeholder: hint, value });
    return input;
  });
  const apply = (cursor) => {
    const q = new URLSearchParams();
    for (const input of inputs) if (input.value) q.set(input.name, input.value);
    if (cursor) q.set('cursor', cursor);
    if (params.get('per_page')) q.set('per_page', params.get('per_page'));
    location.hash = `#/calls/${enc(pick.value)}${q.toString() ? `?${q}` : ''}`;
  };
  const filters = h('form', { class: 'toolbar', id: 'call-filters', onsubmit: (e) => { e.preventDefault(); apply(null); } },
    pick, inputs, h('button', { type: 'submit' }, 'Filter'));
  const q = new URLSearchParams();
  for (const name of ['route', 'state', 'start', 'since', 'cursor', 'per_page']) if (params.get(name)) q.set(name, params.get(name));
  let listing;
  try {
    ({ data: listing } = await api('GET', `/v1/apps/${enc(app)}/calls?${q}`));
  } catch (e) {
    if (e.status === 401) return;
    show(h('h1', { text: 'Calls' }), filters, message(e.message));
    return;
  }
  const rows = listing.calls.map((c) => h('tr', {},
    h('td', {}, link(`#/call/${enc(app)}/${enc(c.id)}`, c.id)),
    h('td', { text: c.route }),
    h('td', {}, h('span', { class: `state ${c.state}`, text: c.state })),
    h('td', { class: 'num', text: c.http_status === null ? '–' : c.http_status }),
    h('td', { text: c.start || '–' }),
    h('td', { text: c.created_at }),
    h('td', { class: 'num', text: fmt(c.wait_ms) }),
    h('td', { class: 'num', text: fmt(c.start_ms) }),
    h('td', { class: 'num', text: fmt(c.exec_ms) })));
  const paging = h('div', { class: 'toolbar' },
    params.get('cursor') ? h('button', { class: 'plain', type: 'button', onclick: () => apply(null) }, 'Newest') : null,
    listing.next_cursor ? h('button', { class: 'plain', type: 'button', id: 'next-page', onclick: () => apply(listing.next_cursor) }, 'Older') : null);
  show(h('h1', {}, 'Calls of ', link(`#/apps/${enc(app)}`, app)), filters,
    h('table', { id: 'calls' },
      h('thead', {}, h('tr', {}, ['call', 'route', 'state', 'status', 'start', 'created', 'wait ms', 'start ms', 'exec ms'].map((t, i) => h('th', { class: i === 3 || i > 5 ? 'num' : null, text: t })))),
      h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colspan: 9, class: 'muted', text: 'No calls match.' })))),
    paging);
}

async function callPage(app, id) {
  const { data } = await api('GET', `/v1/apps/${enc(app)}/calls/${enc(id)}`);
  const call = data.call;
  let logText = '';
  try {
    const { data: log } = await api('GET', `/v1/apps/${enc(app)}/calls/${enc(id)}/log`);
    logText = log.log.log;
  } catch (e) {
    if (e.status === 401) return;
    logText = `(no log: ${e.message})`;
  }
  const facts = h('dl', { class: 'kv', id: 'call-record' });
  for (const [name, value] of Object.entries(call)) {
    facts.append(h('dt', { text: name }), h('dd', { text: value === null ? '–' : value }));
  }
  show(h('h1', {}, 'Call ', h('code', { text: id })),
    h('p', {}, link(`#/calls/${enc(app)}?route=${enc(call.route)}`, `calls of ${app}${call.route}`), ' · ', link(routeHash(app, call.route), 'the route')),
    h('div', { class: 'card' }, facts),
    h('h2', { text: 'Log' }), h('pre', { id: 'call-log', text: logText || '(empty)' }));
}

// -- start -----------------------------------------------------------------------------

window.addEventListener('hashchange', route);
probe().then(route, (e) => show(message(`The executor did not answer: ${e.message}`)));
