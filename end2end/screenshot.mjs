// Captures the dashboard's pages into docs/screenshots/ (run by hand against a live server: BASE_URL=… node screenshot.mjs).
import { chromium } from '@playwright/test';

const base = process.env.BASE_URL ?? 'http://127.0.0.1:3000';
const out = new URL('../docs/screenshots/', import.meta.url).pathname;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
});
for (const scheme of ['light', 'dark']) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 }, colorScheme: scheme });
  await page.goto(base + '/');
  await page.locator('body[data-hydrated="true"]').waitFor();
  await page.screenshot({ path: `${out}dashboard-${scheme}.png` });
  await page.getByRole('link', { name: 'GPT-4 Baseline', exact: true }).click();
  await page.getByRole('heading', { level: 1 }).waitFor();
  if (process.env.START_RUN) {
    await page.getByRole('button', { name: /Start/ }).click();
    await page.locator('table.runs .badge').first().waitFor();
  }
  await page.screenshot({ path: `${out}instance-${scheme}.png` });
  await page.close();
}
await browser.close();
