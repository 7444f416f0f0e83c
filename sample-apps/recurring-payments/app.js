// Recurring payments: the direct debits and subscriptions you pay every
// month, what they add up to, and when each is next due.
//
// Reads your `io.domicile.bank.operation` documents (only `date`, `amount`
// and `label`; never the account or the operation ids). A payment is
// recurring when the same payee (its label, with dates, card numbers and
// references left out) is debited once in each of at least two different
// months, for amounts within 5 % of their median, and not more than once
// in any month: rent and phone plans, not the baker's.
//
// Input (optional): {"min_months": 2, "tolerance": 0.05}.

import { query, log, service, view } from '../sdk-js/domicile.js';

const OPERATION = 'io.domicile.bank.operation';

/** The payee of a label: upper case, words with digits (dates, card numbers, references) left out. */
export function payee(label) {
  return label
    .toUpperCase()
    .split(/[^A-Z0-9À-Ÿ]+/)
    .filter((word) => word && !/\d/.test(word))
    .join(' ');
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

const cents = (euros) => Math.round(euros * 100) / 100;

function findRecurring(options) {
  const unknown = Object.keys(options).filter((k) => !['min_months', 'tolerance'].includes(k));
  if (unknown.length) throw new Error(`unknown input fields: ${unknown.join(', ')} (expected min_months, tolerance)`);
  const minMonths = options.min_months ?? 2;
  const tolerance = options.tolerance ?? 0.05;
  if (!Number.isInteger(minMonths) || minMonths < 2) throw new Error('min_months must be an integer of at least 2');
  if (typeof tolerance !== 'number' || tolerance < 0 || tolerance > 1) throw new Error('tolerance must be between 0 and 1');

  const byPayee = new Map();
  const months = new Set();
  for (const { body } of query(OPERATION, { amount: { $lt: 0 } }, { sort: 'date' })) {
    const month = body.date.slice(0, 7);
    months.add(month);
    const name = payee(body.label);
    if (!name) continue;
    if (!byPayee.has(name)) byPayee.set(name, []);
    byPayee.get(name).push({ date: body.date, month, amount: -body.amount });
  }

  const recurring = [];
  for (const [name, payments] of byPayee) {
    const perMonth = new Map();
    for (const p of payments) perMonth.set(p.month, (perMonth.get(p.month) ?? 0) + 1);
    if (perMonth.size < minMonths || [...perMonth.values()].some((n) => n > 1)) continue;
    const typical = median(payments.map((p) => p.amount));
    if (payments.some((p) => Math.abs(p.amount - typical) > tolerance * typical)) continue;
    const days = payments.map((p) => Number(p.date.slice(8, 10)));
    const last = payments[payments.length - 1];
    recurring.push({
      payee: name,
      monthly_eur: cents(typical),
      day_of_month: Math.round(median(days)),
      months: perMonth.size,
      last: last.date,
      last_eur: cents(last.amount),
    });
  }
  recurring.sort((a, b) => b.monthly_eur - a.monthly_eur || a.payee.localeCompare(b.payee));
  const monthly = recurring.reduce((sum, r) => sum + r.monthly_eur, 0);
  log.info(`found ${recurring.length} recurring payments over ${months.size} months`);
  return {
    months: [...months].sort(),
    recurring,
    monthly_eur: cents(monthly),
    yearly_eur: cents(monthly * 12),
    view: [
      view.heading('Recurring payments'),
      view.number('Debited every month', cents(monthly), 'EUR'),
      view.number('Over a year', cents(monthly * 12), 'EUR'),
      view.table(['payee', 'EUR a month', 'around the', 'months seen', 'last'],
        recurring.slice(0, 500).map((r) => [view.quote(r.payee), r.monthly_eur, r.day_of_month, r.months, r.last]),
        'Debited once a month, within ' + Math.round(tolerance * 100) + ' % of their usual amount'),
    ],
  };
}

export const run = service(findRecurring);
