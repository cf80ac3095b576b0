"""The contract suite of the Insights Audit Logs API.

One suite, three targets: the mock in-process (WSGI, the default), the real mock served over HTTP on
127.0.0.1 (`--serve-mock`), or any deployment (`--base-url URL`). See contract_tests/README.md.
"""
