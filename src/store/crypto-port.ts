import type { AttributeValue } from '../codec/attribute-value.js';
import type { ModelDef } from '../model/index.js';
import { decodeItem, type AvItem, type LogicalItem } from '../codec/item.js';

/** What the store needs from src/crypto: seal attributes before a write, open them after a read. */
export interface CryptoPort {
  encryptItem(model: ModelDef, item: AvItem): Promise<AvItem>;
  encryptValue(model: ModelDef, attribute: string, av: AttributeValue): Promise<AttributeValue>;
  decryptItem(model: ModelDef, item: AvItem): Promise<AvItem>;
}

/** Decrypt, then decode: every read path goes through here, so no envelope reaches a response. */
export async function readItem(crypto: CryptoPort, model: ModelDef, item: AvItem): Promise<LogicalItem> {
  return decodeItem(model, model.encrypted.size === 0 ? item : await crypto.decryptItem(model, item));
}

export function readItems(crypto: CryptoPort, model: ModelDef, items: readonly AvItem[]): Promise<LogicalItem[]> {
  return Promise.all(items.map((item) => readItem(crypto, model, item)));
}
