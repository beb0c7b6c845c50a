#!/usr/bin/env node
// Thin launcher so the bin link exists before the first build.
import('../dist/main.js').catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/main.js')) {
    console.error('enclave-edge: not built yet; run `npm run build` in the repository root');
  } else {
    console.error(`enclave-edge: ${err && err.message ? err.message : err}`);
  }
  process.exit(1);
});
