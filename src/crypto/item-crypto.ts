import type { AttributeValue } from '../codec/attribute-value.js';
import { setOwn } from '../codec/index.js';
import { SidecarError, withCause } from '../errors.js';
import type { CachingKeyProvider } from './cache.js';
import { openParsed, parseEnvelope, sealAttribute, type ParsedEnvelope } from './envelope.js';
import { checkPayloadType } from './payload.js';

export interface ModelEncryptionInfo {
  readonly name: string;
  readonly encrypted: ReadonlySet<string>;
  /** DMS types by attribute: a decrypted value of another type is an invalid envelope. */
  readonly attributes?: ReadonlyMap<string, { readonly type: string }>;
}

type Item = Record<string, AttributeValue>;

/** Encrypted attributes of `model` present in `item`, in item order. */
function presentEncrypted(model: ModelEncryptionInfo, item: Item): string[] {
  const out: string[] = [];
  for (const name of Object.keys(item)) {
    if (model.encrypted.has(name) && item[name] !== undefined) out.push(name);
  }
  return out;
}

function notConfigured(model: ModelEncryptionInfo, attribute: string, action: 'write' | 'read'): SidecarError {
  const tail = action === 'write' ? 'refusing to write plaintext' : 'cannot decrypt';
  return new SidecarError(
    'ErrEncryptionNotConfigured',
    500,
    `model ${model.name} marks attribute ${attribute} as encrypted but no key provider is configured; ${tail}`,
    { attribute },
  );
}

/** Adds the attribute name to an envelope error raised while fetching its data key. */
function forAttribute(err: unknown, attribute: string): unknown {
  if (err instanceof SidecarError && err.code === 'ErrInvalidEncryptedEnvelope' && err.extra?.attribute === undefined) {
    return withCause(new SidecarError(err.code, err.status, `attribute ${attribute}: ${err.detail}`, { ...err.extra, attribute }), err);
  }
  return err;
}

/** What the store calls: seal encrypted attributes before a write, open them after a read. Fail-closed. */
export class ItemCrypto {
  readonly #provider: CachingKeyProvider | undefined;

  constructor(provider: CachingKeyProvider | undefined) {
    this.#provider = provider;
  }

  get configured(): boolean {
    return this.#provider !== undefined;
  }

  /** Replace plaintext AttributeValues of encrypted attributes with envelopes (NULL values are encrypted too, as {"t":"NULL"}). */
  encryptItem(model: ModelEncryptionInfo, item: Item): Promise<Item> {
    if (model.encrypted.size === 0) return Promise.resolve(item);
    const names = presentEncrypted(model, item);
    if (names.length === 0) return Promise.resolve(item);
    const provider = this.#provider;
    if (provider === undefined) return Promise.reject(notConfigured(model, names[0], 'write'));
    return provider.currentDataKey().then((key) => {
      const out: Item = { ...item };
      for (const name of names) setOwn(out, name, sealAttribute(name, item[name], key));
      return out;
    });
  }

  /** Seal one value (e.g. for an update expression); values of non-encrypted attributes pass through. */
  async encryptValue(model: ModelEncryptionInfo, attribute: string, av: AttributeValue): Promise<AttributeValue> {
    if (!model.encrypted.has(attribute)) return av;
    if (this.#provider === undefined) throw notConfigured(model, attribute, 'write');
    return sealAttribute(attribute, av, await this.#provider.currentDataKey());
  }

  /** Decrypt envelopes of encrypted attributes; a non-envelope or tampered value → ErrInvalidEncryptedEnvelope (whole item fails, no partial item). */
  decryptItem(model: ModelEncryptionInfo, item: Item): Promise<Item> {
    if (model.encrypted.size === 0) return Promise.resolve(item);
    const names = presentEncrypted(model, item);
    if (names.length === 0) return Promise.resolve(item);
    const provider = this.#provider;
    if (provider === undefined) return Promise.reject(notConfigured(model, names[0], 'read'));
    let parsed: Array<[string, ParsedEnvelope]>;
    try {
      // Every envelope is checked before any provider call.
      parsed = names.map((name) => [name, parseEnvelope(item[name], name)]);
    } catch (err) {
      return Promise.reject(err);
    }
    return (async () => {
      const keys = await Promise.all(
        parsed.map(([name, env]) => provider.plaintextFor(env.edk).catch((err: unknown) => Promise.reject(forAttribute(err, name)))),
      );
      const out: Item = { ...item };
      for (const [i, [name, env]] of parsed.entries()) {
        const av = openParsed(name, env, keys[i]);
        const type = model.attributes?.get(name)?.type;
        try {
          if (type !== undefined) checkPayloadType(av, type);
        } catch (err) {
          throw forAttribute(err, name);
        }
        setOwn(out, name, av);
      }
      return out;
    })();
  }
}
