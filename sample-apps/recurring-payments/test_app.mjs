// recurring-payments run natively on fixture operations, with the SDK's
// test home (`node --test sample-apps/recurring-payments/test_app.mjs`;
// tests/languages.rs runs it).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AppFailed, TestHome } from '../sdk-js/domicile_testing.mjs';

const APP = new URL('./app.js', import.meta.url);
const OPERATION = 'io.domicile.bank.operation';

const operations = [
  { date: '2026-01-05', amount: -62.14, label: 'PRLV SEPA EDF CLIENTS REF 2026-01' },
  { date: '2026-02-05', amount: -63.0, label: 'PRLV SEPA EDF CLIENTS REF 2026-02' },
  { date: '2026-03-06', amount: -62.14, label: 'PRLV SEPA EDF CLIENTS REF 2026-03' },
  // Twice in one month: not a subscription.
  { date: '2026-01-10', amount: -1.2, label: 'BOULANGERIE' },
  { date: '2026-01-11', amount: -1.2, label: 'BOULANGERIE' },
  { date: '2026-02-10', amount: -1.2, label: 'BOULANGERIE' },
  // Too far from its median.
  { date: '2026-01-20', amount: -30, label: 'CARREFOUR' },
  { date: '2026-02-20', amount: -90, label: 'CARREFOUR' },
  // A credit is not a payment.
  { date: '2026-01-03', amount: 2150, label: 'SALAIRE' },
  { date: '2026-02-03', amount: 2150, label: 'SALAIRE' },
];

test('the monthly debits of fixture operations', async () => {
  const home = new TestHome().withDocs(OPERATION, operations);
  const output = await home.run(APP);
  assert.deepEqual(output.recurring.map((r) => [r.payee, r.monthly_eur, r.months]), [['PRLV SEPA EDF CLIENTS REF', 62.14, 3]]);
  assert.equal(output.monthly_eur, 62.14);
  assert.deepEqual(output.months, ['2026-01', '2026-02', '2026-03']);
  assert.deepEqual(home.logs, ['info: found 1 recurring payments over 3 months']);
  assert.deepEqual(output.view[0], { heading: 'Recurring payments' });
});

test('what is wrong is said', async () => {
  await assert.rejects(new TestHome().run(APP, { min_months: 1 }), AppFailed);
  await assert.rejects(new TestHome().run(APP, { tolerence: 0.1 }), /unknown input fields: tolerence/);
});
