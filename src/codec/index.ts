export { ExactNumber, MAX_SIGNIFICANT_DIGITS, fromN, isInteger, normalizeDecimal, significantDigits, toN } from './number.js';
export { decodeBase64, decodeBase64Url, encodeBase64, encodeBase64Url } from './binary.js';
export { canonicalJson, isPlainObject, isWellFormed } from './canonical-json.js';
export { formatRfc3339Nano, parseRfc3339, toEpochSeconds } from './time.js';
export { MAX_NESTING_DEPTH, decodeNatural, decodeValue, encodeNatural, encodeTtl, encodeValue, isEmpty, setOwn } from './value.js';
export { MAX_ITEM_BYTES, checkItemSize, attributeValueSize, itemSize } from './size.js';
