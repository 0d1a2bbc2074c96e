import { test, expect, type Page } from '@playwright/test';
import { hydrated, watchConsole } from './helpers';

/** Open the instance called `name` from the dashboard. */
async function openInstance(page: Page, name: string) {
  await page.goto('/');
  await hydrated(page);
  await page.getByRole('link', { name, exact: true }).click();
  await expect(page.getByRole('heading', { name, level: 1 })).toBeVisible();
}

/** Start a run on the current instance page and open it. */
async function startAndOpenRun(page: Page) {
  const before = await page.locator('table.runs tbody tr').count();
  await page.getByRole('button', { name: /Start/ }).click();
  await expect(page.locator('table.runs tbody tr')).toHaveCount(before + 1);
  await page.locator('table.runs tbody tr').first().getByRole('link').click();
  await expect(page.locator('.run-head')).toBeVisible();
  await hydrated(page);
}

test('create an instance through the generated form: an invalid value shows its message, fixing it submits', async ({ page }) => {
  const problems = watchConsole(page);
  await page.goto('/');
  await hydrated(page);
  await page.keyboard.press('n');
  await expect(page).toHaveURL(/\/instances\/new$/);
  await expect(page.getByRole('heading', { name: 'New instance' })).toBeVisible();

  await page.locator('#field-experiment').selectOption('training_curve');
  await page.locator('#field-name').fill('E2E curve');
  const epochs = page.locator('#field-epochs');
  await epochs.fill('0');
  await expect(page.locator('.field', { has: epochs }).getByRole('alert')).toHaveText('must be at least 1');
  await expect(page.getByRole('button', { name: 'Fix 1 error' })).toBeVisible();

  await epochs.fill('12');
  await page.locator('#field-epoch_ms').fill('150');
  await expect(page.locator('.field', { has: epochs }).getByRole('alert')).toHaveCount(0);
  await page.getByRole('button', { name: 'Create instance' }).click();
  await expect(page).toHaveURL(/\/instances\/[0-9a-f-]{36}$/);
  await expect(page.getByRole('heading', { name: 'E2E curve', level: 1 })).toBeVisible();
  await expect(page.locator('table.kv')).toContainText('150');
  expect(problems).toEqual([]);
});

test('list fields add and remove items, and nested errors name their path', async ({ page }) => {
  await page.goto('/instances/new');
  await hydrated(page);
  await page.locator('#field-experiment').selectOption('model_pairs');
  await page.locator('#field-name').fill('Pairs from the form');
  await expect(page.locator('.list-item')).toHaveCount(1);
  await page.getByRole('button', { name: '+ add' }).click();
  await expect(page.locator('.list-item')).toHaveCount(2);
  const runs = page.locator('#field-model_pairs-1--runs');
  await runs.fill('500');
  await expect(page.locator('.field', { has: runs }).getByRole('alert')).toHaveText('must be at most 100');
  // The new item's models have no default: the form says so, under each.
  await expect(page.locator('.list-item').nth(1).getByText('is required')).toHaveCount(2);
  await page.locator('.list-item').nth(1).getByRole('button', { name: 'remove' }).click();
  await expect(page.locator('.list-item')).toHaveCount(1);
  await page.getByRole('button', { name: 'Create instance' }).click();
  await expect(page.getByRole('heading', { name: 'Pairs from the form', level: 1 })).toBeVisible();
});

test('start a run: progress moves and logs arrive live', async ({ page }) => {
  const problems = watchConsole(page);
  await openInstance(page, 'E2E curve');
  await startAndOpenRun(page);
  const progress = page.locator('.progress-text');
  await expect(progress).toContainText(/epoch \d+\/12/);
  const first = await progress.textContent();
  await expect(progress).not.toHaveText(first ?? '');
  await expect(page.locator('table.logs tr.log').first()).toBeVisible();
  await expect(page.locator('.run-head .badge')).toHaveText(/completed/, { timeout: 30_000 });
  await expect(page.getByRole('button', { name: /Logs \(\d+\)/ })).toBeVisible();
  const logTab = await page.getByRole('button', { name: /^Logs/ }).textContent();
  const count = Number((logTab ?? '').replace(/[^0-9]/g, ''));
  expect(count).toBeGreaterThan(12);
  await expect(page.locator('table.logs tr.log')).toHaveCount(count);
  expect(problems).toEqual([]);
});

test('cancel a sleeper and see cancelled', async ({ page }) => {
  await openInstance(page, 'Long sleep (cancel me)');
  await startAndOpenRun(page);
  await expect(page.locator('.run-head .badge')).toHaveText(/running/);
  await page.getByRole('button', { name: /Cancel/ }).click();
  await expect(page.locator('.run-head .badge')).toHaveText(/cancelled/);
  await expect(page.locator('.run-note')).toHaveText('cancelled by user');
  await expect(page.getByRole('button', { name: /Cancel/ })).toHaveCount(0);
});

test('a run that panics shows failed with the message', async ({ page }) => {
  await openInstance(page, 'Panicking experiment');
  await startAndOpenRun(page);
  await expect(page.locator('.run-head .badge')).toHaveText(/failed/);
  await expect(page.locator('.run-error')).toContainText('panicked: simulated crash');
});

test('the 10,000-node result opens lazily: collapsed nodes have no DOM children', async ({ page }) => {
  await openInstance(page, 'Big nested result');
  await startAndOpenRun(page);
  await expect(page.locator('.run-head .badge')).toHaveText(/completed/);
  await page.getByRole('button', { name: /^Results/ }).click();
  const row = page.locator('tr[data-key="weights"]');
  await expect(row).toBeVisible();
  const root = row.locator('.json-node').first();
  await expect(root.locator('.json-children')).toHaveCount(0);
  await expect(row.locator('.json-node')).toHaveCount(1);

  await root.locator('> .json-toggle').click();
  const children = root.locator('> .json-children > .json-node, > .json-children > .json-leaf');
  const opened = await children.count();
  expect(opened).toBeGreaterThan(0);
  expect(opened).toBeLessThanOrEqual(100);
  // Every child is itself collapsed: nothing below the first level exists yet.
  await expect(root.locator('> .json-children .json-children')).toHaveCount(0);
});

test('two pages: a run started in one appears in the other without reload', async ({ browser }) => {
  const watcher = await browser.newPage();
  await watcher.goto('/');
  await hydrated(watcher);
  await expect(watcher.locator('.live.on')).toBeVisible();
  const row = watcher.locator('tr', { has: watcher.getByRole('link', { name: 'Claude Baseline', exact: true }) });
  const runsBefore = Number(await row.locator('td.num').textContent());

  const actor = await browser.newPage();
  await openInstance(actor, 'Claude Baseline');
  await actor.getByRole('button', { name: /Start/ }).click();

  await expect(row.locator('td.num')).toHaveText(String(runsBefore + 1));
  await expect(row.locator('.badge')).toBeVisible();
  await watcher.close();
  await actor.close();
});

test('a run with more than a thousand results pages the rest in on demand', async ({ page }) => {
  await page.goto('/instances/new');
  await hydrated(page);
  await page.locator('#field-experiment').selectOption('training_curve');
  await page.locator('#field-name').fill('Long curve');
  await page.locator('#field-epochs').fill('600');
  await page.locator('#field-epoch_ms').fill('0');
  await page.getByRole('button', { name: 'Create instance' }).click();
  await expect(page.getByRole('heading', { name: 'Long curve', level: 1 })).toBeVisible();
  await page.getByRole('button', { name: /Start/ }).click();
  const row = page.locator('table.runs tbody tr').first();
  await expect(row.locator('.badge')).toHaveText(/completed/, { timeout: 30_000 });
  await row.getByRole('link').click();
  await hydrated(page);
  const tab = page.getByRole('button', { name: /^Results/ });
  await tab.click();
  const total = Number(((await tab.textContent()) ?? '').replace(/[^0-9]/g, ''));
  expect(total).toBeGreaterThan(1_200); // loss/n and accuracy/n per epoch, plus the summary
  const rows = page.locator('table.results tbody tr');
  await expect(rows).toHaveCount(1_000);
  await page.getByRole('button', { name: 'load more results' }).click();
  await expect(rows).toHaveCount(total);
  await expect(page.getByRole('button', { name: 'load more results' })).toHaveCount(0);
});
