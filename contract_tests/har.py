"""The run's exchanges as HAR 1.2 (contract.har) and its judged checks as NDJSON (contract.ndjson).

schemathesis' pytest integration writes HAR only for the tests it parametrizes itself (schema.config.reports),
one file per schema, and has no NDJSON writer in pytest mode (`st run --report ndjson` is CLI only). The suite
sends through three schemas plus hand-built cases, so it records every judged exchange itself (loader's
after_validate hook) and writes one file of each into the report directory: the HAR opens in a browser's
network panel or any HAR viewer; the NDJSON is one event per judged answer (test, operation, status, checks
passed and failed), for jq and log pipelines. Credentials are masked as in the reports.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from contract_tests.reporting import mask_header

MAX_ENTRIES = 20000  # a deep run sends ~20k requests; beyond, the files would stop being readable
BODY_LIMIT = 8 * 1024  # per body: a deep run of 20k exchanges stays below ~200 MB in memory


def _text(content: bytes | str | None) -> str:
    if not content:
        return ""
    text = content.decode("utf-8", "replace") if isinstance(content, bytes) else content
    return text if len(text) <= BODY_LIMIT else text[:BODY_LIMIT] + f"... ({len(text) - BODY_LIMIT} more characters)"


def _headers(pairs) -> list[dict]:
    return [{"name": str(name), "value": mask_header(str(name), str(value))} for name, value in pairs]


class Recorder:
    def __init__(self) -> None:
        self.enabled = False
        self.current_test = ""
        self.entries: list[dict] = []
        self.events: list[dict] = []
        self.dropped = 0

    def record(self, case, response, results) -> None:
        if not self.enabled:
            return
        if len(self.entries) >= MAX_ENTRIES:
            self.dropped += 1
            return
        request = response.request
        elapsed_ms = round(float(getattr(response, "elapsed", 0.0) or 0.0) * 1000, 3)
        started = datetime.fromtimestamp(time.time() - elapsed_ms / 1000, UTC).isoformat(timespec="milliseconds")
        body = _text(request.body)
        content_type = next((v for k, v in request.headers.items() if k.lower() == "content-type"), "")
        response_headers = [(k, v) for k, values in response.headers.items()
                            for v in (values if isinstance(values, list) else [values])]
        response_type = next((v for k, v in response_headers if k.lower() == "content-type"), "")
        content = response.content or b""
        entry = {
            "startedDateTime": started,
            "time": elapsed_ms,
            "request": {
                "method": request.method, "url": request.url, "httpVersion": "HTTP/1.1", "cookies": [],
                "headers": _headers(request.headers.items()),
                "queryString": [{"name": k, "value": v} for k, v in parse_qsl(urlsplit(request.url).query, keep_blank_values=True)],
                "headersSize": -1, "bodySize": len(request.body or b""),
                **({"postData": {"mimeType": content_type, "text": body}} if request.body else {}),
            },
            "response": {
                "status": response.status_code, "statusText": "", "httpVersion": "HTTP/1.1", "cookies": [],
                "headers": _headers(response_headers),
                "content": {"size": len(content), "mimeType": response_type, "text": _text(content)},
                "redirectURL": "", "headersSize": -1, "bodySize": len(content),
            },
            "cache": {},
            "timings": {"send": 0, "wait": elapsed_ms, "receive": 0},
            "comment": self.current_test,
        }
        self.entries.append(entry)
        self.events.append({
            "test": self.current_test, "operation": getattr(case.operation, "label", None),
            "method": request.method, "url": request.url, "status": response.status_code, "elapsed_ms": elapsed_ms,
            "passed": sorted({r.name for r in results if r.failure is None}),
            "failed": [{"check": r.name, "code": r.failure.code, "title": r.failure.title} for r in results if r.failure is not None],
        })

    def har(self) -> dict:
        from importlib.metadata import PackageNotFoundError, version

        try:
            creator_version = version("insights-mock")
        except PackageNotFoundError:
            creator_version = "checkout"
        return {"log": {"version": "1.2", "creator": {"name": "insights-mock contract_tests", "version": creator_version},
                        "entries": self.entries,
                        **({"comment": f"{self.dropped} later exchanges not recorded (limit {MAX_ENTRIES})"} if self.dropped else {})}}

    def write(self, directory: Path) -> list[Path]:
        from contract_tests.report_files import unique_path

        if not self.enabled:
            return []
        directory.mkdir(parents=True, exist_ok=True)
        har = unique_path(directory / "contract.har")
        har.write_text(json.dumps(self.har(), ensure_ascii=False), encoding="utf-8")
        ndjson = unique_path(directory / "contract.ndjson")
        ndjson.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in self.events), encoding="utf-8")
        return [har, ndjson]


RECORDER = Recorder()
