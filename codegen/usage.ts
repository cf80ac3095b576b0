// How a frontend uses the types openapi-typescript generates from openapi.yaml (schema.d.ts, never
// committed: `npx openapi-typescript ../openapi.yaml -o schema.d.ts`). tests/test_codegen.py type-checks this
// file against freshly generated types with `tsc --noEmit --strict`, so a renamed field, a dropped schema or
// operation, or a changed parameter breaks the build here first.
import type { components, operations, paths } from "./schema";

type Schemas = components["schemas"];
type Json<Op extends keyof operations, Code extends keyof operations[Op]["responses"]> =
  operations[Op]["responses"][Code] extends { content: { "application/json": infer Body } } ? Body : never;

const PREFIX = "/api/v2/insights/kpis/audit-logs";

async function call<T>(base: string, token: string, method: "GET" | "POST", path: string): Promise<T> {
  const response = await fetch(base + path, { method, headers: { Authorization: `Bearer ${token}` } });
  if (!response.ok) {
    const problem = (await response.json()) as Schemas["Error"];
    throw new Error(`${problem.status} ${problem.error}: ${problem.message}`);
  }
  return (await response.json()) as T;
}

export async function firstSession(base: string, token: string): Promise<string[]> {
  const most = await call<Json<"getMostViewedDashboards", 200>>(base, token, "GET", `${PREFIX}/dashboard/most-viewed?limit=5`);
  const top: Schemas["DashboardSummary"] = most.data[0];
  const stats = await call<Json<"getDashboardStats", 200>>(base, token, "GET", `${PREFIX}/dashboard/${top.dashboardId}/stats`);
  const view = await call<Json<"recordDashboardView", 200>>(base, token, "POST", `${PREFIX}/dashboard/${top.dashboardId}/view`);
  const recent = await call<Json<"getRecentlyViewedDashboards", 200>>(base, token, "GET", `${PREFIX}/dashboard/recently-viewed`);
  const logs = await call<Json<"getDashboardAuditLogs", 200>>(base, token, "GET", `${PREFIX}/dashboard/${top.dashboardId}/logs?page_size=5`);
  const entry: Schemas["AuditLogEntry"] = logs.data[0];
  const one = await call<Json<"getAuditLog", 200>>(base, token, "GET", `${PREFIX}/${entry._id}`);
  const mapping: Schemas["ToolMappingRef"] | undefined = one.data.tool_mapping;
  const page: Schemas["Pagination"] = logs.pagination;
  const daily: Schemas["DailyViews"][] = stats.data.dailyViews;
  return [
    `${top.name}: ${stats.data.totalViews} views, ${stats.data.uniqueViewers} viewers, ${daily.length} days`,
    `recorded view ${view.data._id} at ${view.data.viewedAt}, now ${view.data.viewCount}`,
    `most recent: ${recent.data[0]?.name ?? "none"}`,
    `${page.total_items} entries; newest ${one.data.action} by ${one.data.user_email}${mapping ? ` on ${mapping.name}` : ""}`,
  ];
}

// Query parameters are typed too: a wrong name or type here fails the check.
export const mappingQuery: NonNullable<operations["getMappingAuditLogs"]["parameters"]["query"]> = {
  page: 1,
  page_size: 50,
  start_date: "2026-11-01",
  end_date: "2026-11-25",
  user_id: "64b7f0c2a1e3d4c5b6a79802",
  type: "tool_mapping",
  action: "update",
};
export type MappingLogsPath = paths["/api/v2/insights/kpis/audit-logs/mapping/{mappingId}/logs"]["get"];
