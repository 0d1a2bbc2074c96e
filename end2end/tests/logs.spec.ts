import { test, expect, type Page } from '@playwright/test';
import { hydrated, watchConsole } from './helpers';

/** Create a chatty instance through the JSON API, run it to its end, and open the run's page. */
async function finishedChattyRun(page: Page, name: string, lines: number) {
  const created = await page.request.post('/api/v1/instances', {
    data: { experiment: 'chatty', name, config: { lines, lines_per_second: 0 } },
  });
  expect(created.status(), await created.text()).toBe(201);
  const instance = await created.json();
  const started = await page.request.post(`/api/v1/instances/${instance.id}/runs`);
  expect(started.status(), await started.text()).toBe(201);
  const run = await started.json();
  const waited = await page.request.get(`/api/v1/runs/${run.id}/wait?timeout_s=120`);
  expect((await waited.json()).run.status).toBe('completed');
  await page.goto(`/runs/${run.id}`);
  await hydrated(page);
  return run.id as string;
}

test('one click shows only warnings, counted over the whole run; a search finds a line far above the window', async ({ page }) => {
  const problems = watchConsole(page);
  // Levels cycle debug, info, info, info, warn: 4,000 of 20,000 lines are warnings.
  await finishedChattyRun(page, 'E2E log search', 20_000);
  const warn = page.locator('button.level-toggle.level-warn');
  await expect(warn.locator('.count')).toHaveText('4,000');
  await expect(page.locator('button.level-toggle.level-all .count')).toHaveText('20,000');
  await expect(page.locator('.log-summary')).toHaveText('200 of 20,000 lines loaded');

  await warn.click();
  await expect(warn).toHaveAttribute('aria-pressed', 'true');
  await expect(page.locator('.log-summary')).toHaveText('4,000 matching lines in the whole run · 200 shown');
  const rows = page.locator('table.logs tr.log');
  await expect(rows).toHaveCount(200);
  expect(await page.locator('table.logs tr.log:not(.level-warn)').count()).toBe(0);
  await expect(rows.last()).toContainText('line 20000 of 20000');
  await page.getByRole('button', { name: '↑ load earlier matches' }).click();
  await expect(rows).toHaveCount(400);

  // The same button again: every level.
  await warn.click();
  await expect(page.locator('.log-summary')).toHaveText('200 of 20,000 lines loaded');

  // "line 7 of" is on one line only, the seventh: thousands of lines above what the page loaded.
  await page.getByRole('searchbox', { name: 'Search log lines' }).fill('LINE 7 OF');
  await expect(page.locator('.log-summary')).toHaveText('1 matching line in the whole run · 1 shown');
  await expect(rows).toHaveCount(1);
  await expect(rows.first()).toContainText('line 7 of 20000');
  // A level and a text together: line 7 is info, so "only errors" finds nothing.
  await page.locator('button.level-toggle.level-error').click();
  await expect(page.locator('.empty-logs')).toHaveText('No line matches.');
  expect(problems).toEqual([]);
});
