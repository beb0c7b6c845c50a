import { defineTA } from '@enclave-edge/ta-sdk';

/** The smallest useful TA: echo returns its params unchanged (JSON and binary), ping answers "pong". */
export default defineTA({
  commands: {
    ping: () => 'pong',
    echo: (_ctx, params) => params,
    /** Who am I: the identity the runtime measured and verified. */
    whoami: (ctx) => ({ name: ctx.ta.name, version: ctx.ta.version, measurement: ctx.ta.measurement, signerId: ctx.ta.signerId, debug: ctx.ta.debug }),
  },
});
