import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { EmulatedBackend } from '@enclave-edge/enclave';
import { runConformance } from '@enclave-edge/enclave/testing';

runConformance('emulated', () => new EmulatedBackend(), { describe, it, expect, beforeAll, afterAll });
