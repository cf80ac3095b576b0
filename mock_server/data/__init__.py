"""The data the mock serves: generated from a seed and an anchor, shaped by scenario files.

  vocab.py      the words: roles, tools, audit types and actions (as in openapi.yaml), areas, dashboard kinds
  events.py     when things happen (weekday and working-hour skew) and the compact view events
  audit.py      the audit entries of the generated data
  generate.py   Sizes, generate() and stream(): the deterministic dataset (users, dashboards, mappings, views)
  scenarios.py  scenario files: SCHEMA, load, available, settle (precedence), Settings, ScenarioError
  pins.py       build_dataset: the generated data with a scenario's pinned entities laid on top
  runtime.py    ScenarioRuntime: the active scenario of a process and how every worker follows a switch

Each module is imported by its own name (`from mock_server.data.generate import Sizes`); this package
re-exports nothing, so that one thing has one name. Each module imports only the ones above it.
"""
