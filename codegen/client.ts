// A typed client for the mock (and the real API) with openapi-fetch: no hand-written casts. The types come
// from the served spec: `npx openapi-typescript http://127.0.0.1:4010/openapi.yaml -o schema.d.ts` (never
// committed). tests/tooling/test_codegen.py generates them from a served mock's URL, type-checks this file with
// `tsc --strict`, then compiles and runs it with node against that mock.
import createClient from "openapi-fetch";
import type { components, paths } from "./schema";

type Schemas = components["schemas"];

export function insightsClient(baseUrl: string, token: string, session?: string) {
  return createClient<paths>({
    baseUrl,
    headers: { Authorization: `Bearer ${token}`, ...(session ? { "X-Mock-Session": session } : {}) },
  });
}

function fail(error: Schemas["Error"] | undefined, what: string): never {
  throw new Error(`${what}: ${error ? `${error.status} ${error.error}: ${error.message}` : "no body"}`);
}

export async function tour(baseUrl: string, token: string, session?: string): Promise<string[]> {
  const api = insightsClient(baseUrl, token, session);
  const most = await api.GET("/api/v2/insights/kpis/audit-logs/dashboard/most-viewed", {
    params: { query: { limit: 5 } },
  });
  if (!most.data) fail(most.error, "most viewed");
  const top: Schemas["DashboardSummary"] = most.data.data[0];
  const dashboard = { params: { path: { dashboardId: top.dashboardId } } };
  const stats = await api.GET("/api/v2/insights/kpis/audit-logs/dashboard/{dashboardId}/stats", dashboard);
  if (!stats.data) fail(stats.error, "stats");
  const view = await api.POST("/api/v2/insights/kpis/audit-logs/dashboard/{dashboardId}/view", dashboard);
  if (!view.data) fail(view.error, "view");
  const after = await api.GET("/api/v2/insights/kpis/audit-logs/dashboard/{dashboardId}/stats", dashboard);
  if (!after.data) fail(after.error, "stats after the view");
  const recent = await api.GET("/api/v2/insights/kpis/audit-logs/dashboard/recently-viewed", {});
  if (!recent.data) fail(recent.error, "recently viewed");
  return [
    `top: ${top.name} (${top.viewCount} views)`,
    `stats: ${stats.data.data.totalViews} -> ${after.data.data.totalViews} after view ${view.data.data._id}`,
    `recent: ${recent.data.data[0]?.dashboardId ?? "none"}`,
  ];
}

declare const process: { argv: string[]; exit(code: number): never };

// node client.js BASE_URL TOKEN [SESSION]: prints the tour as JSON (the codegen test runs it).
const [, , base, token, session] = process.argv;
if (base && token) {
  tour(base, token, session).then((lines) => console.log(JSON.stringify(lines)),
                                  (error) => { console.error(String(error)); process.exit(1); });
}
