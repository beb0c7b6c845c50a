// The simulator's service API serves as the HTTPS counterpart in these tests (a dev dependency).
export { startServiceApi, HubError, type RegistryApi } from '@enclave-edge/edge-sim';
export { generatePki as generatePkiForTests } from '@enclave-edge/edge-sim/certs';
