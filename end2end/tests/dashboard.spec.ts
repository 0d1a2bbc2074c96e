import { test, expect, type Page } from '@playwright/test';
import { hydrated, watchConsole } from './helpers';

test('the dashboard lists the demo instances and hydrates without console errors', async ({ page }) => {
  const problems = watchConsole(page);
  const response = await page.goto('/');
  // No other site may frame the dashboard (a framed page could be clicked through: Start, Delete).
  expect(response?.headers()['x-frame-options']).toBe('DENY');
  expect(response?.headers()['content-security-policy']).toBe("frame-ancestors 'none'");
  await expect(page.getByRole('heading', { name: 'Instances' })).toBeVisible();
  for (const name of ['GPT-4 Baseline', 'Claude Baseline', 'Long sleep (cancel me)', 'Model pairs']) {
    await expect(page.getByRole('link', { name, exact: true })).toBeVisible();
  }
  await hydrated(page);

  // The theme toggle only works once hydrated: clicking it must change the document's theme.
  const toggle = page.getByRole('button', { name: /system|dark|light/ });
  await expect(toggle).toHaveText(/system/);
  await toggle.click();
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'dark');
  await expect(toggle).toHaveText(/dark/);
  await toggle.click();
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'light');

  expect(problems).toEqual([]);
});

test('an instance page shows its configuration, and client-side navigation works', async ({ page }) => {
  const problems = watchConsole(page);
  await page.goto('/');
  await hydrated(page);
  await page.getByRole('link', { name: 'Model pairs', exact: true }).click();
  await expect(page).toHaveURL(/\/instances\/[0-9a-f-]{36}$/);
  await expect(page.getByRole('heading', { name: 'Model pairs', level: 1 })).toBeVisible();
  const config = page.locator('table.kv');
  await expect(config).toContainText('model_pairs');
  await expect(config).toContainText('llama-3');
  await expect(config).toContainText('timeout');
  expect(problems).toEqual([]);
});

test('unknown pages and bad ids say so instead of crashing', async ({ page }) => {
  const missing = await page.goto('/no/such/page');
  expect(missing?.status()).toBe(404);
  await expect(page.getByRole('heading', { name: 'Page not found' })).toBeVisible();

  await page.goto('/instances/not-a-uuid');
  await expect(page.getByRole('alert')).toContainText('is not a valid instance id');

  await page.goto('/instances/00000000-0000-4000-8000-000000000000');
  await expect(page.getByRole('alert')).toContainText('no instance with id');
});

test('Esc leaves the instance form even while the cursor is in a field', async ({ page }) => {
  await page.goto('/instances/new');
  await hydrated(page);
  const name = page.locator('#field-name');
  await name.fill('half typed');
  // Letters typed in a field are text, never shortcuts: "n" does not open a new form.
  await name.press('n');
  await expect(name).toHaveValue('half typedn');
  await name.press('Escape');
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByRole('heading', { name: 'Instances' })).toBeVisible();
});
