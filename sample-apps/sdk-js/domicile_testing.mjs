// Test a domicile JavaScript app natively, with Node (20.6 or later): no
// component, no home. A module hook answers the app's `domicile:app/...`
// imports from an in-memory test home:
//
//   import { TestHome } from '../sdk-js/domicile_testing.mjs';
//   const home = new TestHome().withDocs('io.domicile.bank.operation', [{ date: '2026-03-05', amount: -62.14, label: 'EDF' }]);
//   const output = await home.run(new URL('./app.js', import.meta.url), {});   // the parsed output
//   assert.deepEqual(home.logs, ['info: found 0 recurring payments over 1 months']);
//
// `run` rejects with `AppFailed` (the run's message) when the app fails.
// What differs from a real home: every document is readable and writable
// (grants and field projections are the host's: check them with
// `domicile dev`); selectors match fields (dotted paths too) by equality or
// with $gt, $gte, $lt, $lte, $ne, $in; the clock is fixed
// (2026-03-01T12:00:00Z unless `at`).

import { register } from 'node:module';

// The host's interfaces as modules that call the current test home.
const INTERFACES = {
  data: `const h = () => globalThis.__domicileTestHome;
    export function get(doctype, id) { return h().hostGet(doctype, id); }
    export function put(doctype, id, body) { return h().hostPut(doctype, id, body); }
    function remove(doctype, id) { return h().hostDelete(doctype, id); }
    export { remove as delete };
    export function query(doctype, selector, options) { return h().hostQuery(doctype, selector, options); }`,
  log: `export function write(level, message) { globalThis.__domicileTestHome.logs.push(level + ': ' + message); }`,
  clock: `export function nowMs() { return BigInt(globalThis.__domicileTestHome.nowMs); }`,
  notify: `export function send(title, body) { globalThis.__domicileTestHome.notifications.push([title, body]); }`,
  egress: `export function request(destination, payload, purpose) { return globalThis.__domicileTestHome.hostRequest(destination, payload, purpose); }`,
};

const HOOKS = `
const INTERFACES = ${JSON.stringify(INTERFACES)};
export async function resolve(specifier, context, next) {
  const m = /^domicile:app\\/([a-z]+)@/.exec(specifier);
  if (m && INTERFACES[m[1]] !== undefined) return { url: 'domicile-test:' + m[1], shortCircuit: true };
  return next(specifier, context);
}
export async function load(url, context, next) {
  if (url.startsWith('domicile-test:')) return { format: 'module', source: INTERFACES[url.slice(14)], shortCircuit: true };
  return next(url, context);
}`;
register('data:text/javascript,' + encodeURIComponent(HOOKS));

export class AppFailed extends Error {}

const refused = (tag, val) => ({ tag, val });
let loads = 0;

export class TestHome {
  constructor() {
    this.docs = new Map(); // doctype -> Map(id -> body)
    this.logs = [];
    this.notifications = [];
    this.outbox = [];
    this.nowMs = 1772366400000;
    this.nextId = 0;
  }

  withDocs(doctype, bodies) {
    for (const body of bodies) this.hostPut(doctype, undefined, JSON.stringify(body));
    return this;
  }

  at(nowMs) {
    this.nowMs = nowMs;
    return this;
  }

  /** The documents of a doctype now, as `[id, body]`. */
  documents(doctype) {
    return [...(this.docs.get(doctype) || new Map())];
  }

  /** Loads the service at `appUrl` (a fresh instance) and runs it with `options` as input. */
  async run(appUrl, options = {}) {
    globalThis.__domicileTestHome = this;
    const app = await import(`${appUrl}?test-home=${++loads}`);
    let output;
    try {
      output = app.run(JSON.stringify(options));
    } catch (e) {
      throw new AppFailed(typeof e === 'string' ? e : e.message);
    }
    return JSON.parse(output);
  }

  hostGet(doctype, id) {
    const body = this.docs.get(doctype)?.get(id);
    if (body === undefined) throw refused('not-found', `no ${doctype} document ${id}`);
    return { id, body: JSON.stringify(body) };
  }

  hostPut(doctype, id, body) {
    const parsed = JSON.parse(body);
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw refused('invalid', 'a document is a JSON object');
    }
    const key = id ?? `doc-${++this.nextId}`;
    if (!this.docs.has(doctype)) this.docs.set(doctype, new Map());
    this.docs.get(doctype).set(key, parsed);
    return key;
  }

  hostDelete(doctype, id) {
    if (!this.docs.get(doctype)?.delete(id)) throw refused('not-found', `no ${doctype} document ${id}`);
  }

  hostQuery(doctype, selector, options) {
    const conditions = JSON.parse(selector);
    let found = [...(this.docs.get(doctype) || new Map())]
      .filter(([, body]) => Object.entries(conditions).every(([f, c]) => matches(field(body, f), c)));
    if (options?.sort) {
      const { field: f, descending } = options.sort;
      found.sort(([, a], [, b]) => compare(field(a, f), field(b, f)) * (descending ? -1 : 1));
    }
    if (options?.limit !== undefined) found = found.slice(0, options.limit);
    const left = found.map(([id, body]) => ({ id, body: JSON.stringify(body) }));
    return { next: (n) => left.splice(0, n) };
  }

  hostRequest(destination, payload, purpose) {
    this.outbox.push([destination, JSON.parse(payload), purpose]);
    return String(this.outbox.length);
  }
}

function field(body, path) {
  return path.split('.').reduce((v, k) => (v !== null && typeof v === 'object' ? v[k] : undefined), body);
}

function compare(a, b) {
  if (a === undefined || b === undefined) return (a !== undefined) - (b !== undefined);
  return a < b ? -1 : a > b ? 1 : 0;
}

function matches(value, condition) {
  const isOps = condition !== null && typeof condition === 'object' && !Array.isArray(condition)
    && Object.keys(condition).length > 0 && Object.keys(condition).every((k) => k.startsWith('$'));
  if (!isOps) return JSON.stringify(value) === JSON.stringify(condition);
  return Object.entries(condition).every(([op, o]) => {
    switch (op) {
      case '$gt': return value !== undefined && compare(value, o) > 0;
      case '$gte': return value !== undefined && compare(value, o) >= 0;
      case '$lt': return value !== undefined && compare(value, o) < 0;
      case '$lte': return value !== undefined && compare(value, o) <= 0;
      case '$ne': return JSON.stringify(value) !== JSON.stringify(o);
      case '$in': return Array.isArray(o) && o.some((x) => JSON.stringify(x) === JSON.stringify(value));
      default: throw new Error(`the test home does not know the selector operator ${op}`);
    }
  });
}
