import { expect, type Page } from '@playwright/test';

/** Collect console errors and uncaught exceptions; a page that logs any is broken even if it looks fine. */
export function watchConsole(page: Page): string[] {
  const problems: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(message.text());
  });
  page.on('pageerror', (error) => problems.push(error.message));
  return problems;
}

/** Resolves once the WebAssembly bundle has hydrated the page (the header marks the body when it mounts). */
export async function hydrated(page: Page) {
  await expect(page.locator('body[data-hydrated="true"]')).toHaveCount(1);
}
