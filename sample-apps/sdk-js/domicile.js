// domicile's guest SDK for JavaScript apps (componentize-js).
//
// A thin layer over the `domicile:app` imports: it turns the host's WIT
// errors into exceptions with a `kind`, iterates queries without
// hand-written cursor loops, and runs a service function from JSON to
// JSON. componentize-js bundles relative imports, so an app imports this
// file by path:
//
//   import { query, service } from '../sdk-js/domicile.js';
//   function summary(options) {
//     let total = 0;
//     for (const { body } of query('io.domicile.bank.operation')) total += body.amount;
//     return { total };
//   }
//   export const run = service(summary);
//
// `console.log` writes to the app's log (stdout), which the resident can
// read; `log` writes with a level.

import * as data from 'domicile:app/data@0.1.0';
import { write } from 'domicile:app/log@0.1.0';
import { nowMs as hostNowMs } from 'domicile:app/clock@0.1.0';
import { send } from 'domicile:app/notify@0.1.0';
import { request } from 'domicile:app/egress@0.1.0';

/** The largest batch the host hands out per call. */
export const MAX_BATCH = 1000;

/**
 * A host call was refused: `kind` is `denied`, `not-found`, `invalid` or
 * `limit`. Or a document was asked for a field it does not hold: `kind`
 * is `withheld` (see `optional`).
 */
export class DomicileError extends Error {
  constructor(kind, message) {
    super(message);
    this.name = 'DomicileError';
    this.kind = kind;
  }
}

// A WIT `error` reaches JS as a thrown value carrying `{tag, val}`
// (directly or as the `payload` of a ComponentError).
function call(f) {
  try {
    return f();
  } catch (e) {
    const refused = e && e.payload !== undefined ? e.payload : e;
    if (refused && typeof refused.tag === 'string') throw new DomicileError(refused.tag, String(refused.val));
    throw e;
  }
}

// Names JavaScript itself asks any object for (serialising it, awaiting
// it, printing it, testing it): never taken for a document's field.
const NOT_FIELDS = new Set(['toJSON', 'then', 'constructor', 'toString', 'valueOf', 'inspect', 'nodeType', 'asymmetricMatch', '$$typeof']);

/**
 * A document's body, which, asked for a field it does not hold, says why it
 * may be missing, as the Rust and Python SDKs do: a field the resident did
 * not grant is withheld from the app. A field that may be absent is read
 * with `optional(body, 'field')`, or tested with `'field' in body`.
 */
function withFields(body) {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return body;
  return new Proxy(body, {
    get(target, key, receiver) {
      if (typeof key !== 'string' || key in target || NOT_FIELDS.has(key)) return Reflect.get(target, key, receiver);
      throw new DomicileError(
        'withheld',
        `\`${key}\`: this document has no \`${key}\`; if documents of this doctype have it, it is withheld from this app: ` +
          `declare it in the manifest's \`fields\` and ask the resident to grant it, or read it with optional(body, '${key}') if it may be absent`,
      );
    },
  });
}

/** A field of a document's body that may be absent: its value, or `fallback`. */
export function optional(body, key, fallback = undefined) {
  return Object.prototype.hasOwnProperty.call(body, key) ? body[key] : fallback;
}

/**
 * Yields `{id, body}` for each document of `doctype` matching `selector`
 * (an object: `{kind: 'load-curve'}`), in id order or sorted on one field.
 * `body` holds only the fields the resident granted; reading another one
 * throws, saying so.
 */
export function* query(doctype, selector = {}, { sort, descending = false, limit, batch = 500 } = {}) {
  const options = { limit, sort: sort ? { field: sort, descending } : undefined };
  const cursor = call(() => data.query(doctype, JSON.stringify(selector), options));
  try {
    for (;;) {
      const docs = call(() => cursor.next(Math.min(batch, MAX_BATCH)));
      if (docs.length === 0) return;
      for (const doc of docs) yield { id: doc.id, body: withFields(JSON.parse(doc.body)) };
    }
  } finally {
    if (typeof cursor[Symbol.dispose] === 'function') cursor[Symbol.dispose]();
  }
}

/** The body of one document (only its granted fields; reading another one throws, saying so). */
export function get(doctype, id) {
  return withFields(JSON.parse(call(() => data.get(doctype, id)).body));
}

/** Creates or replaces a document; returns its id. */
export function put(doctype, body, id) {
  return call(() => data.put(doctype, id, JSON.stringify(body)));
}

export function remove(doctype, id) {
  call(() => data.delete(doctype, id));
}

/** Milliseconds since the Unix epoch, from the host's clock. */
export function nowMs() {
  return Number(hostNowMs());
}

/** Leaves a message for the resident (`domicile notifications`). */
export function notify(title, body) {
  call(() => send(title, body));
}

/**
 * Puts `payload` in the resident's outbox for `destination` (declared in
 * the manifest); nothing leaves until they approve. Returns the request id.
 */
export function askToSend(destination, payload, purpose) {
  return call(() => request(destination, JSON.stringify(payload), purpose));
}

/** The app's log, readable by the resident. Never write personal data here. */
export const log = {
  debug: (message) => write('debug', String(message)),
  info: (message) => write('info', String(message)),
  warn: (message) => write('warn', String(message)),
  error: (message) => write('error', String(message)),
};

/**
 * Makes a service's `run` from `compute(options)`: the input's JSON (`{}`
 * when empty) in, a JSON-serialisable result out. Any exception becomes the
 * run's error message for the resident; one that is not a refused host
 * call also leaves its stack in the app's log.
 */
export function service(compute) {
  return (input) => {
    try {
      const options = input.trim() ? JSON.parse(input) : {};
      if (options === null || typeof options !== 'object' || Array.isArray(options)) {
        throw new TypeError('the input must be a JSON object');
      }
      return JSON.stringify(compute(options));
    } catch (e) {
      if (!(e instanceof DomicileError) && e && e.stack) log.error(e.stack);
      throw e instanceof Error ? e.message : String(e);
    }
  };
}

/**
 * Blocks of a view: what domicile draws next to a service's output (see
 * "Views" in the README). A service returns them under `view`:
 *
 *   return { months, view: [view.heading('Payments'), view.number('Per month', 898.13, 'EUR'),
 *     view.chart('bar', 'Per payee', payees, { EUR: amounts }, 'EUR')] };
 *
 * Strings are plain text: no markup, no links, at most 120 characters (a
 * paragraph 2000); pass text that comes from data through `view.quote`.
 */
export const view = {
  heading: (text) => ({ heading: text }),
  text: (text) => ({ text }),
  number: (label, value, unit, delta, versus) => ({ number: defined({ label, value, unit, delta, versus }) }),
  table: (columns, rows, title) => ({ table: defined({ title, columns: [...columns], rows: rows.map((r) => [...r]) }) }),
  /** `kind`: 'bar', 'line' or 'stacked-bar'; `series`: { name: values }, one value (or null) per x label. */
  chart: (kind, title, x, series, unit) => ({
    chart: defined({ kind, title, x: [...x], unit,
      series: Object.entries(series).map(([name, values]) => ({ name, values: [...values] })) }),
  }),
  /**
   * Text from data (a label, a name) made fit for a view: control and
   * reordering characters dropped, markup and links defused with look-alike
   * characters, cut to 120 characters.
   */
  quote(text) {
    const kept = [...String(text)].filter((c) => !/[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]/.test(c));
    let out = '';
    for (let i = 0; i < kept.length; i++) {
      const c = kept[i], next = kept[i + 1] || '';
      const lower = out.toLowerCase();
      if (c === '<' && /[A-Za-z\/!?]/.test(next)) out += '\u2039';
      else if (c === '/' && next === '/' && out.endsWith(':')) { out += '\u2044\u2044'; i++; }
      else if (c === '.' && lower.endsWith('www')) out += '\u2024';
      else if (c === ':' && (lower.endsWith('javascript') || lower.endsWith('mailto'))) out += '\ua789';
      else out += c;
    }
    const chars = [...out];
    return chars.length <= 120 ? out : chars.slice(0, 119).join('') + '\u2026';
  },
};

function defined(object) {
  return Object.fromEntries(Object.entries(object).filter(([, v]) => v !== undefined && v !== null));
}
