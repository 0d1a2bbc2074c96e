import { test, expect, type Page } from '@playwright/test';
import { hydrated, watchConsole } from './helpers';

/** A minimal RFC 4180 reader: enough to check that the export round-trips. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { cell += '"'; i++; }
      else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') { row.push(cell); cell = ''; }
    else if (c === '\n') { row.push(cell); rows.push(row); row = []; cell = ''; }
    else if (c !== '\r') cell += c;
  }
  if (cell !== '' || row.length > 0) { row.push(cell); rows.push(row); }
  return rows;
}

/** From the dashboard (client-side), start a run of `name`, wait for it to complete, tick it for comparison. */
async function runAndPick(page: Page, name: string) {
  await page.locator('header.topbar').getByRole('link', { name: 'Instances' }).click();
  await page.getByRole('link', { name, exact: true }).click();
  await expect(page.getByRole('heading', { name, level: 1 })).toBeVisible();
  const rows = page.locator('table.runs tbody tr');
  const before = await rows.count();
  await page.getByRole('button', { name: /Start/ }).click();
  await expect(rows).toHaveCount(before + 1);
  await expect(rows.first().locator('.badge')).toHaveText(/completed/, { timeout: 30_000 });
  await rows.first().locator('input.select-run').check();
}

test('compare three runs from two instances, see differences and charts, export CSV and JSON', async ({ page }) => {
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(error.message));
  await page.goto('/');
  await hydrated(page);
  await runAndPick(page, 'GPT-4 Baseline');
  await runAndPick(page, 'Claude Baseline');
  await runAndPick(page, 'Claude Baseline');

  await page.getByRole('link', { name: 'Compare (3)' }).click();
  await expect(page).toHaveURL(/\/compare\?runs=([0-9a-f-]{36},){2}[0-9a-f-]{36}$/);
  await expect(page.locator('th.run-col')).toHaveCount(6); // three columns, in both tables

  const config = page.locator('table.config-diff');
  await expect(config.locator('tr[data-key="model"]')).toBeVisible();
  await expect(config.locator('tr[data-key="model"]')).toContainText('claude-3');
  await expect(config.locator('tr[data-key="epochs"]')).toHaveCount(0); // same everywhere: hidden by default
  await page.getByLabel('only differences').uncheck();
  await expect(config.locator('tr[data-key="epochs"]')).toBeVisible();
  await page.getByLabel('only differences').check();
  await expect(config.locator('tr[data-key="epochs"]')).toHaveCount(0);

  const accuracy = page.locator('table.results-diff tr[data-key="accuracy"]');
  // The two Claude runs share config and seed, so they tie: both are marked best or both worst.
  const best = await accuracy.locator('td.best').count();
  const worst = await accuracy.locator('td.worst').count();
  expect(best + worst).toBe(3);
  expect([best, worst].sort()).toEqual([1, 2]);
  const loss = page.locator('figure.chart[data-series="loss"]');
  await expect(loss).toBeVisible();
  await expect(loss.locator('polyline')).toHaveCount(3);
  await expect(loss.locator('.legend li')).toHaveCount(3);

  const ids = new URL(page.url()).searchParams.get('runs')!.split(',');
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: '⤓ CSV' }).click()]);
  expect(download.suggestedFilename()).toBe('comparison.csv');
  const csv = parseCsv(await (await import('node:fs/promises')).readFile((await download.path())!, 'utf8'));
  expect(csv[0]).toEqual(['run_id', 'instance', 'status', 'section', 'key', 'step', 'value']);
  const accuracyRows = csv.filter((row) => row[3] === 'result' && row[4] === 'accuracy');
  expect(accuracyRows.map((row) => row[0]).sort()).toEqual([...ids].sort());
  expect(accuracyRows.every((row) => !Number.isNaN(Number(row[6])))).toBe(true);
  expect(csv.some((row) => row[3] === 'series' && row[4] === 'loss' && row[5] === '30')).toBe(true);

  const json = await (await page.request.get(`/export/compare.json?runs=${ids.join(',')}`)).json();
  expect(json.runs.map((run: { id: string }) => run.id)).toEqual(ids);
  expect(json.series.find((s: { name: string }) => s.name === 'loss').lines).toHaveLength(3);

  const runCsv = parseCsv(await (await page.request.get(`/export/runs/${ids[0]}/results.csv`)).text());
  expect(runCsv[0]).toEqual(['seq', 'ts', 'key', 'value']);
  expect(runCsv.some((row) => row[2] === 'accuracy')).toBe(true);
  const logs = await (await page.request.get(`/export/runs/${ids[0]}/logs.json`)).json();
  expect(logs.length).toBeGreaterThan(30);
  expect(logs[0].seq).toBe(1);
  expect(problems).toEqual([]);
});

// Uses the completed runs the test above made (the suite runs serially, in file order).
test('the runs list filters and compares what is ticked', async ({ page }) => {
  await page.goto('/runs?status=completed');
  await hydrated(page);
  await expect(page.getByRole('heading', { name: 'Runs', level: 1 })).toBeVisible();
  const rows = page.locator('table.runs-all tbody tr');
  await expect(rows.first()).toBeVisible();
  await expect(rows.locator('.badge').filter({ hasNotText: 'completed' })).toHaveCount(0);
  await rows.nth(0).locator('input.select-run').check();
  await rows.nth(1).locator('input.select-run').check();
  await page.getByRole('link', { name: 'Compare selected (2)' }).click();
  await expect(page.locator('table.config-diff th.run-col')).toHaveCount(2);
});
