import type { Test } from 'tap';
import { startMoto } from './moto.js';
import { tools, withTool } from './tools.js';
import { startTestSidecar, type TestSidecar } from './sidecar.js';
import type { SidecarConfig } from '../../src/config.js';

export interface BackendCase {
  readonly name: 'dynalite' | 'moto';
  readonly sidecar: TestSidecar;
}

/**
 * Runs `suite` once on the embedded store and once through moto (external-endpoint mode, tables created
 * at boot). Each file passes its own moto `region`: moto keeps tables per region, so files never collide.
 */
export async function forEachBackend(
  t: Test,
  region: string,
  suite: (t: Test, backend: BackendCase) => Promise<void>,
  overrides: Partial<SidecarConfig> = {},
): Promise<void> {
  await t.test('dynalite (embedded)', async (t) => {
    const sidecar = await startTestSidecar(overrides);
    t.teardown(() => sidecar.close());
    await suite(t, { name: 'dynalite', sidecar });
  });
  await withTool(t, tools.moto(), 'moto (AWS-compatible)', async (t) => {
    const moto = await startMoto();
    t.teardown(() => moto.stop());
    const sidecar = await startTestSidecar({ ...overrides, dynamodbEndpoint: moto.endpoint, region, createTables: true });
    t.teardown(() => sidecar.close());
    await suite(t, { name: 'moto', sidecar });
  });
}
