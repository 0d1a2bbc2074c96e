import { test, expect } from '@playwright/test';
import { hydrated, watchConsole } from './helpers';

// `cargo xtask test` starts a server on PostgreSQL that executes nothing itself (ATHANOR_WORKERS=0) and one
// `athanor worker` beside it, and passes the server's address here.
const server = process.env.WORKERS_URL ?? '';
const worker = process.env.WORKER_NAME ?? 'e2e-worker';

test('a run executing on a worker node streams live into the browser, and the workers page lists the node', async ({ page }) => {
  expect(server, 'WORKERS_URL is set by cargo xtask test').not.toBe('');
  const problems = watchConsole(page);
  const created = await page.request.post(`${server}/api/v1/instances`, {
    data: { experiment: 'chatty', name: 'On a worker', config: { lines: 3000, lines_per_second: 300 } },
  });
  expect(created.status(), await created.text()).toBe(201);
  const started = await page.request.post(`${server}/api/v1/instances/${(await created.json()).id}/runs`);
  expect(started.status(), await started.text()).toBe(201);
  const run = await started.json();

  await page.goto(`${server}/runs/${run.id}`);
  await hydrated(page);
  await expect(page.locator('.run-head')).toContainText(`on ${worker}`);
  // Lines arrive while it runs (about ten seconds), and the page ends with every one of them counted.
  await expect(page.locator('.run-head .badge')).toHaveText(/running/);
  const lines = page.locator('table.logs tr.log');
  await expect(lines.first()).toBeVisible();
  const early = await lines.count();
  await expect(page.locator('.run-head .badge')).toHaveText(/completed/, { timeout: 30_000 });
  await expect(page.getByRole('button', { name: 'Logs (3,000)' })).toBeVisible();
  await expect(lines.last()).toContainText('line 3000 of 3000');
  expect(early).toBeLessThan(3000);

  await page.goto(`${server}/workers`);
  const row = page.locator('table.workers tr', { hasText: worker });
  await expect(row).toContainText('up');
  expect(problems).toEqual([]);
});
