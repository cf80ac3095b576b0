// A fixture that gives each test its own mock session: every request of its page (and of `request`)
// carries X-Mock-Session, so the test sees only the views it recorded, whatever runs beside it.
import { test as base, expect } from '@playwright/test';

export const MOCK = `http://127.0.0.1:${process.env.MOCK_PORT ?? 4010}`;

export const test = base.extend<{ session: string }>({
  session: async ({}, use, testInfo) => {
    const name = `w${testInfo.workerIndex}-${testInfo.testId}`.slice(0, 48);
    await use(name);
    // Leave nothing behind (the mock would drop it after --session-ttl anyway).
    await fetch(`${MOCK}/__admin/sessions/${name}`, { method: 'DELETE' });
  },
  extraHTTPHeaders: async ({ session }, use) => {
    await use({ 'X-Mock-Session': session });
  },
});

export { expect };
