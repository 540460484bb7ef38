import type { DmsAttribute } from '../dms/types.js';
import type { ModelDef } from './registry.js';

type Example = Record<string, unknown>;

/** A value of the attribute's DMS type that the sidecar accepts (shown in /docs as the pre-filled request). */
export function exampleValue(model: Pick<ModelDef, 'name' | 'partitionKey' | 'ttl'>, attr: DmsAttribute): unknown {
  if (attr.attribute === model.ttl) return '2030-01-01T00:00:00Z';
  switch (attr.type) {
    case 'S':
      if (attr.json) return { example: true };
      if (attr.format === 'rfc3339nano') return '2026-01-16T10:20:30.123000000Z';
      return attr.attribute === model.partitionKey.attribute ? `${model.name.toLowerCase()}-1` : `example-${attr.attribute}`;
    case 'N':
      return attr.format === 'int' || attr.format === 'unix_seconds' ? 1 : 19.99;
    case 'B':
      return 'AQID';
    case 'BOOL':
      return true;
    case 'NULL':
      return null;
    case 'M':
      return { key: 'value' };
    case 'L':
      return ['value'];
    case 'SS':
      return ['a', 'b'];
    case 'NS':
      return [1, 2];
    case 'BS':
      return ['AQID'];
  }
}

/** An item to create: the keys, every required attribute and every index key (never an encrypted one). */
export function modelExample(model: Omit<ModelDef, 'schemas'>): Example {
  const item: Example = {};
  for (const attr of model.attributes.values()) {
    if (model.lifecycle.has(attr.attribute) || attr.encryption) continue;
    const wanted = model.keyAttributes.includes(attr.attribute) || attr.required || model.indexKeyRoles.has(attr.attribute);
    if (wanted) item[attr.attribute] = exampleValue(model, attr);
  }
  return item;
}

/** The key of {@link modelExample}. */
export function keyExample(model: Omit<ModelDef, 'schemas'>): Example {
  const item = modelExample(model);
  return Object.fromEntries(model.keyAttributes.map((k) => [k, item[k]]));
}

/** A PATCH body: set the first attribute that can be updated, or undefined when there is none. */
export function patchExample(model: Omit<ModelDef, 'schemas'>): Example | undefined {
  for (const attr of model.attributes.values()) {
    if (model.keyAttributes.includes(attr.attribute) || model.lifecycle.has(attr.attribute) || attr.encryption) continue;
    return { set: { [attr.attribute]: exampleValue(model, attr) } };
  }
  return undefined;
}
