"""A stand-in for the KFP v2beta1 API, written for the tests (not a KFP server): the endpoints
that kubeflow/schedule.py calls.

It records every request (method, path, query, JSON or multipart body) so tests can check
what the client asked for; it keeps pipelines, versions, experiments and recurring runs in
memory. `refuse_with=401` makes it refuse every call, as an endpoint with auth would.
"""

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

API = "/apis/v2beta1"


class FakeKfp:
    def __init__(self, refuse_with=None):
        self.requests = []
        self.refuse_with = refuse_with
        self.pipelines = {}  # display name -> id
        self.versions = {}  # pipeline id -> [version ids]
        self.experiments = {}  # display name -> id
        self.recurring_runs = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.host = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()

    def paths(self, method=None):
        return [r["path"] for r in self.requests if method is None or r["method"] == method]

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method):
                url = urllib.parse.urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                record = {
                    "method": method,
                    "path": url.path,
                    "query": urllib.parse.parse_qs(url.query),
                    "content_type": self.headers.get("Content-Type", ""),
                    "raw": raw,
                }
                try:
                    record["json"] = json.loads(raw) if raw and "json" in record["content_type"] else None
                except ValueError:
                    record["json"] = None
                fake.requests.append(record)
                if fake.refuse_with:
                    return self._reply(fake.refuse_with, {"error": "unauthenticated", "code": 16})
                status, body = fake.answer(method, url.path, record)
                return self._reply(status, body)

            def do_GET(self):
                self._handle("GET")

            def do_POST(self):
                self._handle("POST")

        return Handler

    def answer(self, method, path, record):
        query = record["query"]
        if method == "GET" and path == f"{API}/pipelines":
            return 200, _listing("pipelines", "pipeline_id", self.pipelines, query)
        if method == "POST" and path == f"{API}/pipelines/upload":
            name = query.get("name", ["?"])[0]
            pid = f"pipeline-{len(self.pipelines) + 1}"
            self.pipelines[name] = pid
            self.versions[pid] = [f"{pid}-v1"]
            return 200, {"pipeline_id": pid, "display_name": name}
        if method == "POST" and path == f"{API}/pipelines/upload_version":
            pid = query.get("pipelineid", [None])[0]
            vid = f"{pid}-v{len(self.versions[pid]) + 1}"
            self.versions[pid].append(vid)
            return 200, {"pipeline_id": pid, "pipeline_version_id": vid, "display_name": query.get("name", [""])[0]}
        if method == "GET" and path.startswith(f"{API}/pipelines/") and path.endswith("/versions"):
            pid = path.split("/")[-2]
            try:
                ordered = _sorted_page(self.versions.get(pid, []), query)
            except ValueError as e:
                return 400, {"error": str(e), "code": 3}
            return 200, {
                "pipeline_versions": [{"pipeline_id": pid, "pipeline_version_id": v} for v in ordered],
                "total_size": len(self.versions.get(pid, [])),
            }
        if method == "GET" and path == f"{API}/experiments":
            return 200, _listing("experiments", "experiment_id", self.experiments, query)
        if method == "POST" and path == f"{API}/experiments":
            name = record["json"]["display_name"]
            self.experiments.setdefault(name, f"experiment-{len(self.experiments) + 1}")
            return 200, {"experiment_id": self.experiments[name], "display_name": name}
        if method == "POST" and path == f"{API}/recurringruns":
            run = dict(record["json"], recurring_run_id=f"recurring-{len(self.recurring_runs) + 1}")
            self.recurring_runs.append(run)
            return 200, run
        if method == "GET" and path.startswith(f"{API}/healthz"):
            return 200, {}
        return 404, {"error": f"fake KFP has no {method} {path}"}


def _listing(kind, id_key, ids_by_name, query):
    """A KFP list response of the named objects matching the request's display_name filter."""
    wanted = _filter_value(query)
    found = [{id_key: oid, "display_name": name} for name, oid in ids_by_name.items() if wanted in (None, name)]
    return {kind: found, "total_size": len(found)}


def _sorted_page(ids_in_creation_order, query):
    """Ordering and paging as the v2beta1 list calls document them: `sort_by` is "<field>" (ascending)
    or "<field> desc"; without it, creation order; `page_size` caps the page. Only created_at (and
    display_name, which our ids mirror) are sortable here; another field is refused, as KFP does."""
    items = list(ids_in_creation_order)
    sort_by = query.get("sort_by", [""])[0].strip()
    if sort_by:
        field, _, direction = sort_by.partition(" ")
        if field not in ("created_at", "display_name", "name") or direction.strip() not in ("", "desc", "asc"):
            raise ValueError(f"Invalid sorting field: {sort_by!r}")
        if direction.strip() == "desc":
            items.reverse()
    page_size = int(query.get("page_size", [0])[0] or 0)
    return items[:page_size] if page_size > 0 else items


def _filter_value(query):
    """The display_name a KFP list filter asks for, or None for no filter."""
    raw = query.get("filter", [None])[0]
    if not raw:
        return None
    for predicate in json.loads(raw).get("predicates", []):
        if predicate.get("key") in ("display_name", "name"):
            return predicate.get("string_value") or predicate.get("stringValue")
    return None
