import { test, expect, type Page } from '@playwright/test';
import { readFileSync, writeFileSync } from 'node:fs';
import { hydrated, watchConsole } from './helpers';

// `cargo xtask test` serves a copy of the repository's athanor.toml and passes its path here, so these tests can
// edit the manifest while the server runs, as a user would.
const manifest = process.env.ATHANOR_MANIFEST ?? '';
// Set SCREENSHOT_DIR to keep the pictures the README shows (`docs/screenshots/commands/`).
const screenshots = process.env.SCREENSHOT_DIR;

async function snap(page: Page, name: string) {
  if (screenshots) await page.screenshot({ path: `${screenshots}/${name}.png` });
}

// A command experiment as a user would add it: inline Python writing one protocol line on fd 3.
const ADDED = `

[[experiment]]
name = "e2e_added"
description = "Added to the manifest while the server runs."
version = "1"
command = ["python3", "-c", "import json, os; os.write(3, (json.dumps({'type': 'result', 'key': 'answer', 'value': 42}) + '\\\\n').encode())"]

[[experiment.field]]
name = "rounds"
type = "int"
label = "Rounds"
default = 3
min = 1
`;

async function openInstance(page: Page, name: string) {
  await page.goto('/');
  await hydrated(page);
  await page.getByRole('link', { name, exact: true }).click();
  await expect(page.getByRole('heading', { name, level: 1 })).toBeVisible();
}

/** Start a run on the current instance page, open it, and return its id. */
async function startAndOpenRun(page: Page): Promise<string> {
  const rows = page.locator('table.runs tbody tr');
  const before = await rows.count();
  await page.getByRole('button', { name: /Start/ }).click();
  await expect(rows).toHaveCount(before + 1);
  await rows.first().getByRole('link').click();
  await expect(page.locator('.run-head')).toBeVisible();
  await hydrated(page);
  return page.url().split('/').pop() ?? '';
}

test('an experiment added to athanor.toml appears in the picker without a restart; a bad edit shows a banner and keeps the last good one', async ({ page }) => {
  expect(manifest, 'ATHANOR_MANIFEST names the manifest the server reads').not.toBe('');
  const original = readFileSync(manifest, 'utf8');
  const problems = watchConsole(page);
  try {
    await page.goto('/instances/new');
    await hydrated(page);
    const added = page.locator('#field-experiment option[value="e2e_added"]');
    await expect(added).toHaveCount(0);

    writeFileSync(manifest, original + ADDED);
    await expect(added).toHaveCount(1);
    await page.locator('#field-experiment').selectOption('e2e_added');
    await expect(page.locator('#field-rounds')).toHaveValue('3');
    await page.locator('#field-name').fill('Added while serving');
    await snap(page, 'added-in-picker');
    await page.getByRole('button', { name: 'Create instance' }).click();
    await expect(page.getByRole('heading', { name: 'Added while serving', level: 1 })).toBeVisible();
    await startAndOpenRun(page);
    await expect(page.locator('.run-head .badge')).toHaveText(/completed/);
    await page.getByRole('button', { name: /^Results/ }).click();
    await expect(page.locator('tr[data-key="answer"]')).toContainText('42');

    // A mistake in the file: the banner names the file, the experiment and the field; the experiment stays.
    writeFileSync(manifest, original + ADDED.replace('min = 1', 'min = "one"'));
    const banner = page.locator('.manifest-banner');
    await expect(banner).toBeVisible();
    await expect(banner).toContainText('e2e_added');
    await expect(banner).toContainText('rounds');
    await page.goto('/instances/new');
    await hydrated(page);
    await expect(page.locator('.manifest-banner')).toBeVisible();
    await expect(page.locator('#field-experiment option[value="e2e_added"]')).toHaveCount(1);
    await snap(page, 'manifest-error');

    // Back to the original file: the banner goes and so does the experiment, live.
    writeFileSync(manifest, original);
    await expect(page.locator('.manifest-banner')).toHaveCount(0);
    await expect(page.locator('#field-experiment option[value="e2e_added"]')).toHaveCount(0);
    expect(problems).toEqual([]);
  } finally {
    writeFileSync(manifest, original);
  }
});

test('a Python experiment streams progress and logs live, cancels, and compares with another run', async ({ page }) => {
  const problems = watchConsole(page);
  await page.goto('/instances/new');
  await hydrated(page);
  await page.locator('#field-experiment').selectOption('llm_eval');
  await expect(page.locator('#field-prompt_variant')).toHaveValue('baseline');
  await snap(page, 'python-form');

  await openInstance(page, 'LLM eval: GPT-4, baseline prompt');
  const gpt = await startAndOpenRun(page);
  await expect(page.locator('.progress-text')).toContainText(/\/40/);
  await expect(page.locator('table.logs tr.log').first()).toBeVisible();
  // For the picture only: a run well under way (the bar and a page of logs).
  if (screenshots) await expect(page.locator('.progress-text')).toContainText(/\b(1[2-9]|2\d)\/40/);
  await snap(page, 'python-run-live');
  await expect(page.locator('.run-head .badge')).toHaveText(/completed/, { timeout: 30_000 });
  await page.getByRole('button', { name: /^Results/ }).click();
  await expect(page.locator('tr[data-key="accuracy"]')).toBeVisible();

  await openInstance(page, 'LLM eval: Claude 3, chain of thought');
  await startAndOpenRun(page);
  await expect(page.locator('.progress-text')).toContainText(/\/40/);
  await page.getByRole('button', { name: /Cancel/ }).click();
  await expect(page.locator('.run-head .badge')).toHaveText(/cancelled/);
  await expect(page.locator('.run-note')).toHaveText('cancelled by user');
  await snap(page, 'python-run-cancelled');

  await openInstance(page, 'LLM eval: Claude 3, chain of thought');
  const claude = await startAndOpenRun(page);
  await expect(page.locator('.run-head .badge')).toHaveText(/completed/, { timeout: 30_000 });

  await page.goto(`/compare?runs=${gpt},${claude}`);
  await hydrated(page);
  await expect(page.locator('table.config-diff tr[data-key="model"]')).toContainText('claude-3');
  await expect(page.locator('table.results-diff tr[data-key="accuracy"]')).toBeVisible();
  await snap(page, 'python-compare');
  expect(problems).toEqual([]);
});

test('a process that ignores SIGTERM is stopped by force after the grace period', async ({ page }) => {
  await openInstance(page, 'Ignores SIGTERM (cancel me)');
  await startAndOpenRun(page);
  await expect(page.locator('table.logs tr.log').first()).toBeVisible();
  await page.getByRole('button', { name: /Cancel/ }).click();
  await expect(page.locator('.run-head .badge')).toHaveText(/cancelled/, { timeout: 30_000 });
  await expect(page.locator('.run-note')).toContainText('forced after');
});
