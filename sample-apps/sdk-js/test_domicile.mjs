// The JavaScript SDK's own tests, natively, on its test home
// (`node --test sample-apps/sdk-js/test_domicile.mjs`; tests/languages.rs runs it).

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import { AppFailed, TestHome } from './domicile_testing.mjs';

const TRIP = 'io.domicile.mobility.trip';
const SDK = new URL('./domicile.js', import.meta.url).href;
// Sums the trips' distances; `mode` may be absent.
const APP = `
import { optional, query, service } from '${SDK}';
function km() {
  let m = 0;
  const modes = new Set();
  for (const { body } of query('${TRIP}')) {
    m += body.distance_m;
    modes.add(optional(body, 'mode', 'unknown'));
    JSON.stringify(body);
  }
  return { km: m / 1000, modes: [...modes] };
}
export const run = service(km);
`;

async function runApp(home) {
  const scratch = mkdtempSync(join(tmpdir(), 'domicile-sdk-js-'));
  try {
    const path = join(scratch, 'app.mjs');
    writeFileSync(path, APP);
    return await home.run(pathToFileURL(path));
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

test('a missing field says it may be withheld, and how to ask for it', async () => {
  assert.deepEqual(await runApp(new TestHome().withDocs(TRIP, [{ distance_m: 4200 }])), { km: 4.2, modes: ['unknown'] });
  await assert.rejects(
    runApp(new TestHome().withDocs(TRIP, [{ mode: 'bike' }])),
    (e) => e instanceof AppFailed && /`distance_m`: .*it is withheld from this app: declare it in the manifest's `fields`/.test(e.message),
  );
});
