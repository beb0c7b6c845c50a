/** The contract's types only (no runtime code): for callers that talk about enclaves without running one. */
export type * from './contract.js';
