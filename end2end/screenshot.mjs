// Captures every page of the dashboard into docs/screenshots/, in light and dark.
// Run by hand against a live server with the demo instances: BASE_URL=http://127.0.0.1:3000 node screenshot.mjs
import { chromium } from '@playwright/test';

const base = process.env.BASE_URL ?? 'http://127.0.0.1:3000';
const out = new URL('../docs/screenshots/', import.meta.url).pathname;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
});

async function ready(page) {
  await page.locator('body[data-hydrated="true"]').waitFor();
}

// Two finished runs of another instance, so the compare page has something to compare.
{
  const page = await browser.newPage();
  await page.goto(base + '/');
  await ready(page);
  await page.getByRole('link', { name: 'Claude Baseline', exact: true }).click();
  await page.getByRole('heading', { level: 1 }).waitFor();
  for (let i = 0; i < 2; i++) {
    await page.getByRole('button', { name: /Start/ }).click();
    await page.waitForTimeout(300);
  }
  await page.close();
}

for (const scheme of ['light', 'dark']) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 820 }, colorScheme: scheme });
  await page.goto(base + '/');
  await ready(page);
  await page.screenshot({ path: `${out}dashboard-${scheme}.png` });

  await page.goto(base + '/instances/new');
  await ready(page);
  await page.locator('#field-experiment').selectOption('model_pairs');
  await page.locator('#field-name').fill('Screenshot pairs');
  await page.getByRole('button', { name: '+ add' }).click();
  await page.locator('#field-model_pairs-1--runs').fill('500');
  await page.evaluate(() => window.scrollTo(0, 0)); // a sticky header would otherwise sit mid-page
  await page.screenshot({ path: `${out}new-instance-${scheme}.png`, fullPage: true });

  await page.goto(base + '/');
  await ready(page);
  await page.getByRole('link', { name: 'GPT-4 Baseline', exact: true }).click();
  await page.getByRole('heading', { level: 1 }).waitFor();
  await page.getByRole('button', { name: /Start/ }).click();
  await page.locator('table.runs tbody tr').first().waitFor();
  await page.screenshot({ path: `${out}instance-${scheme}.png` });

  await page.locator('table.runs tbody tr').first().getByRole('link').click();
  await page.locator('.progress-text').waitFor();
  await page.waitForTimeout(1500); // let a few epochs stream in, for a representative picture
  await page.screenshot({ path: `${out}run-${scheme}.png` });

  await page.locator('.run-head .badge', { hasText: 'completed' }).waitFor({ timeout: 30_000 });
  await page.getByRole('button', { name: /^Results/ }).click();
  await page.getByRole('button', { name: 'key', exact: true }).click();
  await page.locator('tr[data-key="curve"] .json-toggle').first().click();
  await page.screenshot({ path: `${out}results-${scheme}.png` });

  await page.locator('header.topbar').getByRole('link', { name: 'Runs' }).click();
  await page.getByRole('heading', { name: 'Runs', level: 1 }).waitFor();
  await page.goto(base + '/runs?status=completed');
  await ready(page);
  const rows = page.locator('table.runs-all tbody tr');
  for (let i = 0; i < 3; i++) await rows.nth(i).locator('input.select-run').check();
  await page.screenshot({ path: `${out}runs-${scheme}.png` });
  await page.getByRole('link', { name: /Compare selected/ }).click();
  await page.locator('figure.chart').first().waitFor();
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: `${out}compare-${scheme}.png`, fullPage: true });
  await page.close();
}
await browser.close();
