"""Calibration: what a deployment answered, next to what openapi.yaml says, and a patch a person can review.

Every judged answer (loader's after_validate hook: property, stateful and targeted requests) is walked against
the schema the spec gives for its operation and status. Against a deployment (--base-url, or --serve-mock to
try it) the run writes, into the report directory:
- calibration.md: fields seen that the spec lacks, spec fields never seen, values outside enums and patterns,
  the tie orders met, how paging and filters behaved, the error bodies and WWW-Authenticate challenges seen;
- calibration.patch.json: an RFC 6902 JSON Patch of openapi.yaml that would make the spec describe what was
  seen (add the unknown fields and enum values, remove the optional fields never sent), and
  calibration.openapi.yaml, the spec with the patch applied (YAML comments are not kept), for review only.
Only what was seen counts: a component never reached says nothing, and "never seen" is evidence of the run's
sample, not proof (the markdown says how many objects were seen).
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import yaml

from contract_tests import spec

MAX_ITEMS = 50  # list items walked per answer: the shapes repeat, the cost would not be bounded
_JSON_TYPES = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"), (list, "array"), (dict, "object"))


def _json_type(value) -> str:
    return next((name for kind, name in _JSON_TYPES if isinstance(value, kind)), "null")


def _pointer(location: list[str]) -> str:
    return "/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in location)


class Calibration:
    def __init__(self) -> None:
        self.enabled = False
        self.objects = Counter()  # schema location (pointer) -> objects seen there
        self.seen = defaultdict(set)  # location -> property names seen
        self.extra = defaultdict(Counter)  # location -> unknown property -> its JSON type
        self.outside_enum = defaultdict(Counter)  # enum location -> value
        self.pattern_misses = defaultdict(Counter)  # location -> value
        self.ties = defaultdict(Counter)  # list -> order of equal keys
        self.paging = Counter()
        self.filters = defaultdict(Counter)  # filter -> matched / unmatched entries
        self.errors = defaultdict(Counter)  # status -> body keys / codes
        self.challenges = defaultdict(Counter)  # status -> WWW-Authenticate, its attribute values masked
        self.answers = 0

    # -- observation ------------------------------------------------------------------------------------------

    def observe(self, case, response) -> None:
        if not self.enabled:
            return
        op = spec.operation_for(case.method, case.operation.path) if case is not None else None
        try:
            payload = response.json()
        except Exception:
            payload = None
        self.answers += 1
        schema, location = self._response_schema(op, response.status_code)
        if schema is not None and payload is not None:
            self._walk(payload, schema, location)
        self._behaviour(op, response, payload)

    def _response_schema(self, op, status: int):
        if op is None:
            return None, []
        document = spec.raw_spec()
        path_item = document["paths"][op.path][op.method.lower()]
        responses = path_item.get("responses", {})
        key = next((k for k in (str(status), f"{str(status)[0]}XX", "default") if k in responses), None)
        if key is None:
            return None, []
        location = ["paths", op.path, op.method.lower(), "responses", key]
        node, location = self._deref(responses[key], location)
        media = (node.get("content") or {}).get("application/json")
        if not isinstance(media, dict) or "schema" not in media:
            return None, []
        return self._deref(media["schema"], [*location, "content", "application/json", "schema"])

    @staticmethod
    def _deref(node, location):
        return spec.follow_refs(spec.raw_spec(), node, location)

    def _walk(self, value, schema, location) -> None:
        schema, location = self._deref(schema, location)
        if not isinstance(schema, dict):
            return
        for index, branch in enumerate(schema.get("allOf") or ()):
            self._walk(value, branch, [*location, "allOf", str(index)])
        branches = schema.get("anyOf") or schema.get("oneOf")
        if branches:
            self._walk_branches(value, branches, location, "anyOf" if "anyOf" in schema else "oneOf")
        if isinstance(value, str):
            if "enum" in schema and value not in schema["enum"]:
                self.outside_enum[_pointer(location)][value] += 1
            if "pattern" in schema and not re.search(schema["pattern"], value):
                self.pattern_misses[_pointer(location)][value[:80]] += 1
        if isinstance(value, dict) and ("properties" in schema or schema.get("type") == "object"):
            where = _pointer(location)
            properties = schema.get("properties") or {}
            self.objects[where] += 1
            for name, inner in value.items():
                self.seen[where].add(name)
                if name in properties:
                    self._walk(inner, properties[name], [*location, "properties", name])
                elif properties:
                    self.extra[where][(name, _json_type(inner))] += 1
        if isinstance(value, list) and "items" in schema:
            for item in value[:MAX_ITEMS]:
                self._walk(item, schema["items"], [*location, "items"])

    def _walk_branches(self, value, branches, location, keyword) -> None:
        """An open vocabulary (`anyOf: [$ref Enum, {type: string}]`): a value outside the enum branch is recorded
        there; objects walk the branch of their type."""
        for index, branch in enumerate(branches):
            node, where = self._deref(branch, [*location, keyword, str(index)])
            if not isinstance(node, dict):
                continue
            if isinstance(value, str) and "enum" in node:
                if value not in node["enum"]:
                    self.outside_enum[_pointer(where)][value] += 1
                return
            if isinstance(value, dict) and (node.get("type") == "object" or "properties" in node):
                self._walk(value, branch, [*location, keyword, str(index)])
                return

    def _behaviour(self, op, response, payload) -> None:
        from contract_tests import checks

        status = response.status_code
        if status >= 400 and isinstance(payload, dict):
            self.errors[status][f"keys: {', '.join(sorted(payload))}"] += 1
            self.errors[status][f"error: {payload.get('error')!r}"] += 1
        elif status >= 400:
            self.errors[status][f"not a JSON object ({checks.header(response, 'Content-Type')})"] += 1
        challenge = checks.header(response, "WWW-Authenticate")
        if challenge is not None:
            self.challenges[status][re.sub(r'(realm|scope|error_description)="[^"]*"', r'\1="…"', challenge)] += 1
        if op is None or status != 200 or not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
            return
        items = [i for i in payload["data"] if isinstance(i, dict)]
        if op.operation_id == checks.MOST_VIEWED:
            self._ties("most viewed, equal viewCount", items, ("viewCount",), ("lastViewedAt", "dashboardId"))
        elif op.operation_id == checks.RECENTLY_VIEWED:
            self._ties("recently viewed, equal lastViewedAt", items, ("lastViewedAt",), ("dashboardId",))
        elif op.operation_id in checks.LOG_LISTS:
            self._ties("audit logs, equal createdAt", items, ("createdAt",), ("_id",))
            self._paging(response, payload, items)

    def _ties(self, name, items, keys, then) -> None:
        for a, b in zip(items, items[1:]):
            if all(a.get(k) == b.get(k) for k in keys):
                for key in then:
                    x, y = a.get(key), b.get(key)
                    if x != y and x is not None and y is not None:
                        self.ties[name][f"{key} {'ascending' if str(x).lower() < str(y).lower() else 'descending'}"] += 1
                        break

    def _paging(self, response, payload, items) -> None:
        from contract_tests import checks

        query = checks.sent_query(response)
        meta = payload.get("pagination") if isinstance(payload.get("pagination"), dict) else {}
        if "page_size" not in query and "page_size" in meta:
            self.paging[f"page_size when none is sent: {meta['page_size']}"] += 1
        if "page" not in query and "page" in meta:
            self.paging[f"page when none is sent: {meta['page']}"] += 1
        if meta.get("page", 1) > 1:
            self.paging[f"page > 1 answered with {'entries' if items else 'an empty page'}"] += 1
        for name in ("action", "type", "user_id"):
            wanted = checks.single(query, name)
            if wanted is not None:
                for entry in items:
                    self.filters[name]["matching" if str(entry.get(name)).lower() == wanted.lower() else "not matching"] += 1
        if "start_date" in query or "end_date" in query:
            self.filters["start_date/end_date"][f"pages answered: {response.status_code}"] += 1

    # -- what differs -------------------------------------------------------------------------------------------

    def _node(self, pointer: str):
        node = spec.raw_spec()
        for part in pointer.strip("/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def never_seen(self) -> dict[str, list[str]]:
        out = {}
        for where, count in self.objects.items():
            properties = self._node(where).get("properties") or {}
            missing = sorted(set(properties) - self.seen[where])
            if missing:
                out[where] = missing
        return out

    def patch(self) -> list[dict]:
        ops = []
        for where, found in sorted(self.extra.items()):
            for (name, kind), _count in sorted(found.items()):
                ops.append({"op": "add", "path": f"{where}/properties/{name.replace('~', '~0').replace('/', '~1')}",
                            "value": {"type": kind, "description": "seen on the deployment, not in the spec (calibration)"}})
        for where, values in sorted(self.outside_enum.items()):
            for value in sorted(values):
                ops.append({"op": "add", "path": f"{where}/enum/-", "value": value})
        for where, names in sorted(self.never_seen().items()):
            required = set(self._node(where).get("required") or ())
            for name in names:
                if name not in required:  # a required field never sent fails the schema check already
                    ops.append({"op": "remove", "path": f"{where}/properties/{name}"})
        return ops

    def markdown(self) -> str:
        out = ["# Calibration: what the deployment answered, next to the spec", "",
               f"{self.answers} judged answers walked. `calibration.patch.json` (RFC 6902) would make openapi.yaml "
               "describe what was seen; review it, it is a sample of this run.", ""]

        def table(title, header, rows):
            out.extend([f"## {title}", ""])
            if not rows:
                out.extend(["None.", ""])
                return
            out.extend([f"| {' | '.join(header)} |", "|" + "---|" * len(header), *rows, ""])

        table("Fields seen that the spec lacks", ("where", "field", "type", "times"),
              [f"| `{w}` | `{n}` | {k} | {c} |" for w, f in sorted(self.extra.items()) for (n, k), c in sorted(f.items())])
        table("Spec fields never seen", ("where", "fields", "objects seen", "required?"),
              [f"| `{w}` | {', '.join(f'`{n}`' for n in ns)} | {self.objects[w]} | "
               f"{', '.join(n for n in ns if n in (self._node(w).get('required') or ())) or 'none required'} |"
               for w, ns in sorted(self.never_seen().items())])
        table("Values outside enums", ("enum at", "value", "times"),
              [f"| `{w}` | `{v}` | {c} |" for w, vs in sorted(self.outside_enum.items()) for v, c in sorted(vs.items())])
        table("Values outside patterns", ("pattern at", "value", "times"),
              [f"| `{w}` | `{v}` | {c} |" for w, vs in sorted(self.pattern_misses.items()) for v, c in sorted(vs.items())])
        for title, data in (("Tie orders met", self.ties), ("Filters", self.filters), ("Error bodies", self.errors),
                            ("WWW-Authenticate challenges", self.challenges)):
            table(title, ("where", "seen", "times"),
                  [f"| {w} | `{s}` | {c} |" for w, ss in sorted(data.items(), key=lambda kv: str(kv[0]))
                   for s, c in sorted(ss.items())])
        table("Paging", ("seen", "times"), [f"| {s} | {c} |" for s, c in sorted(self.paging.items())])
        return "\n".join(out) + "\n"

    def write(self, directory: Path) -> list[Path]:
        from contract_tests.report_files import unique_path

        if not self.enabled:
            return []
        directory.mkdir(parents=True, exist_ok=True)
        ops = self.patch()
        md = unique_path(directory / "calibration.md")
        md.write_text(self.markdown(), encoding="utf-8")
        patch = unique_path(directory / "calibration.patch.json")
        patch.write_text(json.dumps(ops, indent=2) + "\n", encoding="utf-8")
        patched = unique_path(directory / "calibration.openapi.yaml")
        patched.write_text(yaml.safe_dump(apply_patch(spec.raw_spec(), ops), sort_keys=False, allow_unicode=True),
                           encoding="utf-8")
        return [md, patch, patched]


def apply_patch(document, ops: list[dict]):
    """RFC 6902 `add` and `remove` (all calibration emits), on a deep copy."""
    document = json.loads(json.dumps(document))
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].lstrip("/").split("/")]
        parent = document
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent.setdefault(part, {})
        last = parts[-1]
        if op["op"] == "add":
            if isinstance(parent, list):
                parent.insert(len(parent) if last == "-" else int(last), op["value"])
            else:
                parent[last] = op["value"]
        elif op["op"] == "remove":
            del parent[int(last) if isinstance(parent, list) else last]
        else:
            raise ValueError(f"unsupported JSON Patch op {op['op']!r}")
    return document


CALIBRATION = Calibration()
