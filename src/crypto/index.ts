export { encodePayload, decodePayload, MAX_PAYLOAD_DEPTH } from './payload.js';
export {
  aadFor,
  DATA_KEY_BYTES,
  ENVELOPE_VERSION,
  NONCE_BYTES,
  openAttribute,
  openParsed,
  parseEnvelope,
  sealAttribute,
  TAG_BYTES,
  type DataKey,
  type ParsedEnvelope,
} from './envelope.js';
export {
  kekFingerprint,
  KmsKeyProvider,
  loadLocalKek,
  LOCAL_EDK_BYTES,
  LOCAL_KEK_FILE,
  LocalKeyProvider,
  mapKmsError,
  newCallCounters,
  type CallCounters,
  type KeyProvider,
  type LoadedKek,
  type LocalKekOrigin,
  type LocalKekSource,
} from './providers.js';
export { CachingKeyProvider, type CacheStats, type CachingOptions } from './cache.js';
export { ItemCrypto, type ModelEncryptionInfo } from './item-crypto.js';
