/**
 * The reserved command names of the enclave's own endpoints (no imports: the enclave worker
 * reads these at start without loading the HPKE code). A TA cannot define them: the worker
 * answers them before looking at the TA's commands.
 */

/** An HPKE envelope travels as the params of this command; the real command is inside. */
export const CONFIDENTIAL_COMMAND = '__ee_confidential';
/** Evidence issued by the enclave for the TA, binding its HPKE key (`{ nonce }` → token). */
export const ENCLAVE_ATTEST_COMMAND = '__ee_attest';
