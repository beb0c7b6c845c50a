export { parsePkcs11Uri, formatPkcs11Uri, encodePkcs11Attr, type Pkcs11Uri, type Pkcs11ObjectType } from './uri.js';
export { openToken, Pkcs11Token, type Pkcs11Key, type KeyClass, type KeySelector, type OpenTokenOptions } from './token.js';
export { DEFAULT_MODULE_PATH, moduleRefCount } from './module.js';
export { ecPointToRaw, p256SpkiFromRawPoint, P256_EC_PARAMS } from './der.js';
export { createSoftHsmToken, type SoftHsmToken } from './softhsm.js';
