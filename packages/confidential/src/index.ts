/** Confidential invocation: HPKE envelopes to a TA's attested key, and the caller's client. */
export { ConfidentialClient, type ConfidentialClientOptions, type ConfidentialTransport, type AttestedKey, type ConfidentialInvokeOptions } from './client.js';
export { CONFIDENTIAL_COMMAND, ENCLAVE_ATTEST_COMMAND } from './names.js';
export {
  ENVELOPE_VERSION, DEFAULT_ENVELOPE_LIFETIME_MS, MAX_ENVELOPE_LIFETIME_MS, CLOCK_TOLERANCE_MS,
  sealRequest, prepareSender, parseRequestEnvelope, openRequest, refusedBeforeOpening, EnvelopeError,
  type EnvelopeHeader, type RequestEnvelope, type JsonValue, type ResponseEnvelope, type InnerResult, type EnvelopeRefusal, type SealedRequest, type PreparedSender, type OpenedRequest, type ParsedRequest,
} from './envelope.js';
export { SUITE_IDS, SUITE_NAME, hpkeSuite, publicJwkOf, rawPublicKeyOf, parseX25519PublicJwk, type RecipientKeyRefusal, generateHpkeKeyPair, importHpkeKeyPair, importHpkePublicKey, type HpkePublicJwk, type HpkeKeyPair, type HpkeKey } from './suite.js';
export { methodTransport, type InvokeMethod } from './method-transport.js';
export {
  SEALED_READING_VERSION, SEALED_READING_INFO, recipientThumbprint, parseSealedReading, checkSealedReading, openSealedReading, SealedReadingError,
  type SealedReadingHeader, type SealedReading, type SealedReadingRefusal, type ParsedSealedReading, type OpenedReading, type OpenSealedReadingOptions,
} from './sealed-reading.js';
