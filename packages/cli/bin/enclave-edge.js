#!/usr/bin/env node
// Thin launcher so the bin link exists before the first build. Failures keep the CLI's
// convention: one line `enclave-edge: CODE: reason`, non-zero exit.
import('../dist/main.js').catch((err) => {
  const notBuilt = err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/main.js');
  const line = notBuilt
    ? 'UNAVAILABLE: not built yet; run `npm run build` in the repository root'
    : `INTERNAL: ${String((err && err.message) || err).split('\n')[0]}`;
  process.stderr.write(`enclave-edge: ${line}\n`);
  process.exit(1);
});
