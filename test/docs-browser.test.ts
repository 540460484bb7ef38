import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { chromium } from 'playwright-core';
import { startTestSidecar } from './helpers/sidecar.js';
import { tools, withTool } from './helpers/tools.js';

// REQUIRE_TOOLS=1 (or the older REQUIRE_BROWSER=1) turns a missing Chromium into a failure.
await withTool(t, tools.chromium(), 'Swagger UI in Chromium', async (t, executablePath) => {
  await t.test('Swagger UI lists the models and a "Try it out" GET returns 200', async (t) => {
    const s = await startTestSidecar({ docs: true });
    t.teardown(() => s.close());
    const profile = await mkdtemp(path.join(tmpdir(), 'chromium-'));
    t.teardown(() => rm(profile, { recursive: true, force: true }));
    const context = await chromium.launchPersistentContext(profile, {
      executablePath,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    t.teardown(() => context.close());
    const page = await context.newPage();
    const response = await page.goto(`${s.url}/docs/`);
    t.equal(response?.status(), 200);
    await page.waitForSelector('.opblock', { timeout: 20_000 });
    const text = await page.locator('#swagger-ui').innerText();
    for (const tag of ['User', 'Order', 'Blob', 'Session', 'transactions', 'models']) t.match(text, tag, `tag ${tag} listed`);
    t.match(text, '/v1/models/User/items/{pk}/{sk}');
    t.match(text, '/v1/models/Order/query');

    const op = page.locator('.opblock', { hasText: 'List the loaded DMS models' }).first();
    await op.locator('.opblock-summary').click();
    // The sidecar turns "Try it out" on by default (tryItOutEnabled); press it only when it is not on yet.
    const tryOut = op.locator('button.try-out__btn');
    await tryOut.waitFor();
    if ((await tryOut.innerText()).trim() === 'Try it out') await tryOut.click();
    await op.locator('button.execute').click();
    const status = op.locator('.live-responses-table tr.response .response-col_status').first();
    await status.waitFor({ timeout: 20_000 });
    t.equal((await status.innerText()).trim(), '200');
    t.match(await op.locator('.live-responses-table .microlight').first().innerText(), /"name": "User"/);
  });
});
