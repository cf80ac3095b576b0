import { test, expect, MOCK } from '../fixtures';

const DASHBOARD = '00000000-0000-4000-8000-00000000d001'; // unknown to the data: it starts at 0 views

// Eight tests, run by four workers at once against one mock: each counts only its own clicks.
for (const clicks of [1, 2, 3, 4, 5, 6, 7, 8]) {
  test(`${clicks} recorded views show as ${clicks}`, async ({ page, request, session }) => {
    await page.goto(`/?mock=${encodeURIComponent(MOCK)}&dashboard=${DASHBOARD}`);
    await expect(page.locator('#total')).toHaveText('0');
    for (let i = 1; i <= clicks; i++) {
      await page.click('#view');
      await expect(page.locator('#total')).toHaveText(String(i));
    }
    // The API through Playwright's request context sees the same session.
    const stats = await request.get(`${MOCK}/api/v2/insights/kpis/audit-logs/dashboard/${DASHBOARD}/stats`,
      { headers: { Authorization: 'Bearer mock-poweruser-token' } });
    expect((await stats.json()).data.totalViews).toBe(clicks);
    const journal = await request.get(`${MOCK}/__admin/requests?method=POST`);
    expect((await journal.json()).count).toBe(clicks); // the session's own journal
    expect((await (await request.get(`${MOCK}/__admin/health`)).json()).session).toBe(session);
  });
}
