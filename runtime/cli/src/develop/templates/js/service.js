// {{id}}: a domicile service. `domicile dev` runs it at every save.

import { query, log, service } from './domicile.js';

function kmPerMode(options) {
  const km = {};
  for (const { body } of query('io.domicile.mobility.trip')) {
    km[body.mode] = (km[body.mode] ?? 0) + body.distance_m / 1000;
  }
  log.info(`${Object.keys(km).length} transport modes`); // console.log goes to the app's log too
  const rounded = Object.fromEntries(Object.entries(km).sort().map(([mode, k]) => [mode, Math.round(k * 10) / 10]));
  return { km_per_mode: rounded };
}

export const run = service(kmPerMode);
