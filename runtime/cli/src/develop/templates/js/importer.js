// {{id}}: a domicile importer. `domicile dev` imports fixtures/ at every save.

import { put, log } from './domicile.js';

const DOCTYPE = '{{id}}.line';

function importFile(fileName, bytes) {
  const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  let kept = 0;
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim()) {
      put(DOCTYPE, { file: fileName, line: i + 1, text: line }, `${fileName}:${i + 1}`);
      kept += 1;
    }
  });
  log.info(`${kept} lines kept`);
  return JSON.stringify({ lines: kept });
}

export { importFile as import };
