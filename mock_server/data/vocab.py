"""The words of the generated data: roles, tools, audit types and actions, product areas, dashboard kinds.

The public enumerations mirror openapi.yaml (tests/unit/test_datagen.py checks them against the spec, so they
cannot drift); the underscored ones are the generator's own vocabulary (data/generate.py, data/audit.py).
"""

from __future__ import annotations

ROLES = ("Opsera Administrator", "Administrator", "Power User", "User", "Auditor", "Security Manager")
TOOLS = ("jira", "github", "gitlab", "bitbucket", "jenkins", "sonarqube", "azure-devops", "argocd")
AUDIT_TYPES = ("dashboard", "tool_mapping", "pipeline", "registry", "kpi")
AUDIT_ACTIONS = ("create", "update", "delete", "view", "share", "export")


# Teams / product areas: display name, Jira-style project key, repository slug.
_AREAS = (
    ("Payments", "PAY", "payments"),
    ("Checkout", "CHK", "checkout"),
    ("Mobile App", "MOB", "mobile-app"),
    ("Platform Team", "PLAT", "platform"),
    ("Search", "SRCH", "search"),
    ("Identity", "IAM", "identity"),
    ("Billing", "BILL", "billing"),
    ("Data Pipeline", "DATA", "data-pipeline"),
    ("Notifications", "NOTIF", "notifications"),
    ("Onboarding", "ONB", "onboarding"),
    ("Inventory", "INV", "inventory"),
    ("Shipping", "SHIP", "shipping"),
    ("Web Storefront", "WEB", "storefront"),
    ("API Gateway", "GW", "api-gateway"),
    ("Fraud Detection", "FRD", "fraud-detection"),
    ("Customer Portal", "CP", "customer-portal"),
    ("Infrastructure", "INFRA", "infrastructure"),
    ("Release Engineering", "REL", "release-engineering"),
    ("Analytics", "ANL", "analytics"),
    ("Core Banking", "CORE", "core-banking"),
)

# Dashboard kinds: title, description ({area} filled in), tags, KPI count range.
_KINDS = (
    ("Pipeline Health", "Build success rate, pipeline duration and failing stages of the {area} pipelines.",
     ("pipelines", "ci"), (5, 12)),
    ("DORA Metrics", "Deployment frequency, lead time for changes, change failure rate and time to restore "
     "of {area}.", ("dora",), (4, 8)),
    ("Code Quality", "Quality gates, coverage, duplications and code smells of the {area} repositories.",
     ("sonarqube", "quality"), (4, 10)),
    ("Sprint Velocity", "Committed versus completed story points and carry-over per sprint of {area}.",
     ("jira", "agile"), (3, 7)),
    ("Deployment Frequency", "Production deployments per day and per service of {area}, with rollbacks.",
     ("dora", "deployments"), (2, 6)),
    ("Lead Time for Changes", "Time from first commit to production for {area}, by stage.",
     ("dora", "lead-time"), (3, 6)),
    ("Change Failure Rate", "Share of {area} deployments that caused an incident or a rollback.",
     ("dora", "reliability"), (2, 5)),
    ("Incident Response", "Open incidents, mean time to acknowledge and mean time to resolve for {area}.",
     ("incidents", "sre"), (4, 9)),
    ("Security Scans", "Open vulnerabilities by severity and time to fix from the {area} security scans.",
     ("security", "vulnerabilities"), (3, 8)),
    ("Test Automation", "Test pass rate, flaky tests and automation coverage of {area}.",
     ("testing", "qa"), (4, 10)),
    ("Release Readiness", "Open blockers, test status and change approvals ahead of the next {area} release.",
     ("release",), (5, 11)),
    ("Flow Metrics", "Flow velocity, flow time, flow load and flow efficiency of the {area} value stream.",
     ("flow", "value-stream"), (4, 8)),
    ("Pull Request Insights", "Pull request cycle time, review depth and merge rate of {area}.",
     ("github", "reviews"), (3, 7)),
    ("Backlog Health", "Backlog size, age of open issues and bugs versus features for {area}.",
     ("jira", "backlog"), (3, 6)),
)

_KPI_NAMES = (
    "Lead Time for Changes", "Deployment Frequency", "Change Failure Rate", "Mean Time to Restore",
    "Build Success Rate", "Pipeline Duration", "Code Coverage", "Open Vulnerabilities", "Sprint Burndown",
    "Cycle Time", "Flaky Tests", "Quality Gate Status", "Story Points Completed", "Pull Request Review Time",
    "Escaped Defects", "Deployment Rollbacks",
)

_TOOL_LABELS = {
    "jira": "Jira", "github": "GitHub", "gitlab": "GitLab", "bitbucket": "Bitbucket", "jenkins": "Jenkins",
    "sonarqube": "SonarQube", "azure-devops": "Azure DevOps", "argocd": "Argo CD",
}

_ROLE_WEIGHTS = {  # generated (non-fixture) users
    "Opsera Administrator": 1, "Administrator": 2, "Power User": 6, "User": 14, "Auditor": 1,
    "Security Manager": 1,
}
_EDITOR_ROLES = ("Opsera Administrator", "Administrator", "Power User")
# The roles that may view dashboards (recordDashboardView's x-required-roles; tests/unit/test_datagen.py checks
# it against the spec): only their users have views. Auditors and Security Managers get 403 there.
VIEWER_ROLES = ("Opsera Administrator", "Administrator", "Power User", "User")
# What a tool mapping maps, per tool: a removed field mapping names one of these (a SonarQube mapping has no
# story points).
_MAPPED_FIELDS = {
    "jira": ("storyPoints", "epicLink", "sprint", "component"), "github": ("labels", "milestone", "reviewers"),
    "gitlab": ("labels", "milestone", "approvers"), "bitbucket": ("reviewers", "branchRestrictions"),
    "jenkins": ("stages", "buildParameters"), "sonarqube": ("qualityGate", "severity", "coverageMetric"),
    "azure-devops": ("areaPath", "iterationPath", "storyPoints"), "argocd": ("syncStatus", "healthStatus"),
}
