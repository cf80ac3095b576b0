"""insights-mock: a spec-first mock server of the Insights Audit Logs API."""

from .app import create_app

__all__ = ["create_app"]
