// The app run natively on fixture documents: `node --test test_app.mjs`.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TestHome } from './domicile_testing.mjs';

test('adds up the km of each mode', async () => {
  const home = new TestHome().withDocs('io.domicile.mobility.trip', [
    { mode: 'bike', distance_m: 4200 },
    { mode: 'bike', distance_m: 800 },
  ]);
  const output = await home.run(new URL('./app.js', import.meta.url));
  assert.deepEqual(output.km_per_mode, { bike: 5 });
  assert.deepEqual(home.logs, ['info: 1 transport modes']);
});
