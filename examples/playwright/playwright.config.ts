// One mock for every worker: each test gets its own session (fixtures.ts), so tests run in parallel
// without seeing each other's views. `webServer` starts the mock and a static page standing in for your app.
import { defineConfig } from '@playwright/test';

const mockPort = Number(process.env.MOCK_PORT ?? 4010);
const appPort = Number(process.env.APP_PORT ?? 5173);
const python = process.env.MOCK_PYTHON ?? 'python3';
const appOrigin = `http://127.0.0.1:${appPort}`;

export default defineConfig({
  testDir: './tests',
  fullyParallel: true,
  workers: Number(process.env.WORKERS ?? 4),
  reporter: [['list']],
  use: {
    baseURL: appOrigin,
    // Your CI's browser; unset, Playwright uses its own download.
    launchOptions: process.env.CHROMIUM
      ? { executablePath: process.env.CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'] }
      : {},
  },
  webServer: [
    {
      // The mock: in a checkout `python3 dev.py serve ...` or `.venv/bin/insights-mock serve ...` works the same.
      command: `${python} -m mock_server serve --port ${mockPort} --now 2026-11-25T12:00:00Z --freeze-clock ` +
               `--cors-origins ${appOrigin} --quiet`,
      url: `http://127.0.0.1:${mockPort}/__admin/health`,
      cwd: process.env.MOCK_CWD ?? '../..',
      reuseExistingServer: !process.env.CI,
    },
    {
      command: `${python} -m http.server ${appPort} --bind 127.0.0.1 --directory app`,
      url: appOrigin,
      reuseExistingServer: !process.env.CI,
      stderr: 'ignore', // http.server logs every request there
    },
  ],
});
