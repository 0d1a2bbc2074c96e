import { test, expect } from '@playwright/test';
import { hydrated, watchConsole } from './helpers';

// `cargo xtask test` starts a second server on 0.0.0.0 with a known token and passes its address and token here.
const publicUrl = process.env.PUBLIC_URL ?? '';
const token = process.env.PUBLIC_TOKEN ?? '';

test('a server beyond loopback asks a browser for its token once, then works as usual', async ({ page }) => {
  expect(publicUrl, 'PUBLIC_URL is set by cargo xtask test').not.toBe('');
  const problems = watchConsole(page);

  // Any page sends a browser without a session to the login page, remembering where it was going.
  await page.goto(`${publicUrl}/runs?status=completed`);
  await expect(page).toHaveURL(/\/login\?next=/);
  await expect(page.getByRole('heading', { name: 'Athanor' })).toBeVisible();
  if (process.env.SCREENSHOT_DIR) await page.screenshot({ path: `${process.env.SCREENSHOT_DIR}/login.png` });

  await page.getByLabel('Access token').fill('not-the-token');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('alert')).toContainText("not this server's token");
  // The refused login answered 401, which the browser reports in the console; nothing else may.
  problems.length = 0;

  await page.getByLabel('Access token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(`${publicUrl}/runs?status=completed`);

  // The session cookie carries the hydrated dashboard's own calls: a run started from the page shows up.
  await page.goto(`${publicUrl}/`);
  await hydrated(page);
  await expect(page.getByRole('link', { name: 'GPT-4 Baseline', exact: true })).toBeVisible();
  await page.getByRole('link', { name: 'GPT-4 Baseline', exact: true }).click();
  await hydrated(page);
  await page.getByRole('button', { name: /Start/ }).click();
  await expect(page.locator('table').getByText(/pending|running|completed/).first()).toBeVisible();

  const cookies = await page.context().cookies(publicUrl);
  const session = cookies.find((cookie) => cookie.name === 'athanor_session');
  expect(session?.httpOnly).toBe(true);
  expect(session?.sameSite).toBe('Strict');
  expect(problems).toEqual([]);
});
