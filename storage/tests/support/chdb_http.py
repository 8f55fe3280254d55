"""A thin ClickHouse HTTP front for chDB (ClickHouse 26.x in-process), for tests only.

Implements the subset of ClickHouse's HTTP interface the Rust `clickhouse` crate uses:
`POST /?query=...&default_format=...&<settings>` with the SQL in the body (queries, DDL)
or in the `query` parameter with a RowBinary body (`INSERT ... FORMAT RowBinary`). The
insert body is written to a temporary file and loaded with
`INSERT INTO t (cols) SETTINGS ... SELECT * FROM file(path, RowBinary, structure)`.
Errors come back as HTTP 500 with ClickHouse's exception text.

Usage: chdb_http.py --path DIR            serve on a free port, print "PORT <n>" on stdout
       chdb_http.py --validate FILE        parse every ';'-separated statement of FILE
"""

import argparse
import os
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlparse

import chdb.session

INSERT_RE = re.compile(
    r"^\s*INSERT\s+INTO\s+(?P<table>[^\s(]+)\s*\((?P<cols>[^)]*)\)\s*FORMAT\s+RowBinary\s*$",
    re.IGNORECASE | re.DOTALL,
)
# Settings the front passes on to INSERTs; others (e.g. LowCardinality toggles) are ignored.
INSERT_SETTINGS = {
    "insert_deduplication_token",
    "insert_deduplicate",
    "deduplicate_blocks_in_dependent_materialized_views",
}


def quote(value):
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def unquote_ident(name):
    return ".".join(part.strip("`\"") for part in name.split("."))


class Front:
    def __init__(self, path):
        self.session = chdb.session.Session(path)
        self.lock = threading.Lock()
        # Insert bodies are spooled next to the database, in the test's own temporary
        # directory, so they go with it (a directory under /tmp outlived every run).
        self.tmp = os.path.join(os.path.dirname(os.path.abspath(path)), "spool")
        os.makedirs(self.tmp, exist_ok=True)
        self.counter = 0

    def query(self, sql, fmt="TSV"):
        with self.lock:
            return self.session.query(sql, fmt).bytes()

    def insert(self, table, cols, body, settings, database=None):
        table = unquote_ident(table)
        if "." not in table and database:
            table = database + "." + table
        database, _, name = table.rpartition(".")
        columns = [c.strip().strip("`\"") for c in cols.split(",") if c.strip()]
        with self.lock:
            types = dict(
                line.split("\t", 1)
                for line in self.session.query(
                    "SELECT name, type FROM system.columns WHERE database = "
                    + quote(database or "default")
                    + " AND table = "
                    + quote(name),
                    "TSV",
                )
                .bytes()
                .decode()
                .splitlines()
            )
            structure = ", ".join(f"`{c}` {types[c]}" for c in columns)
            self.counter += 1
            path = os.path.join(self.tmp, f"insert-{self.counter}.bin")
            with open(path, "wb") as f:
                f.write(body)
            setting_sql = ", ".join(f"{k} = {quote(v)}" for k, v in settings.items())
            sql = (
                f"INSERT INTO {table} ({', '.join('`' + c + '`' for c in columns)}) "
                + (f"SETTINGS {setting_sql} " if setting_sql else "")
                + f"SELECT * FROM file({quote(path)}, RowBinary, {quote(structure)})"
            )
            try:
                self.session.query(sql, "TSV")
            finally:
                os.unlink(path)


def make_handler(front):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def reply(self, status, body, code=None):
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Content-Type", "application/octet-stream")
            if code is not None:
                self.send_header("X-ClickHouse-Exception-Code", str(code))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            self.reply(200, b"Ok.\n")

        def do_POST(self):
            url = urlparse(self.path)
            params = dict(parse_qsl(url.query, keep_blank_values=True))
            length = int(self.headers.get("Content-Length") or 0)
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                body = self.read_chunked()
            else:
                body = self.rfile.read(length)
            try:
                if "query" in params:
                    match = INSERT_RE.match(params["query"])
                    if not match:
                        raise RuntimeError("Code: 48. DB::Exception: front only inserts RowBinary")
                    if params.get("decompress") == "1":
                        raise RuntimeError("Code: 48. DB::Exception: front cannot decompress")
                    settings = {k: v for k, v in params.items() if k in INSERT_SETTINGS}
                    front.insert(match["table"], match["cols"], body, settings, params.get("database"))
                    self.reply(200, b"")
                else:
                    fmt = params.get("default_format", "TSV")
                    self.reply(200, front.query(body.decode("utf-8"), fmt))
            except Exception as e:  # noqa: BLE001 - every failure becomes an HTTP error
                text = str(e)
                m = re.search(r"Code: (\d+)", text)
                self.reply(500, text.encode(), int(m.group(1)) if m else None)

        def read_chunked(self):
            data = b""
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()

    return Handler


def validate(path):
    session = chdb.session.Session()
    text = open(path).read()
    failures = 0
    for statement in [s.strip() for s in text.split(";\n") if s.strip()]:
        lines = [l for l in statement.splitlines() if not l.strip().startswith("--")]
        statement = "\n".join(lines).strip()
        if not statement:
            continue
        # {shard} and {replica} are server macros, expanded before parsing on a real node.
        statement = statement.replace("{shard}", "01").replace("{replica}", "replica-1")
        try:
            session.query("SELECT formatQuery(" + quote(statement) + ")", "TSV")
        except Exception as e:  # noqa: BLE001
            failures += 1
            print(f"INVALID: {statement[:200]}\n  {e}")
    print(f"validated, {failures} invalid")
    sys.exit(1 if failures else 0)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--path")
    parser.add_argument("--validate")
    args = parser.parse_args()
    if args.validate:
        validate(args.validate)
        return
    front = Front(args.path)
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(front))
    print(f"PORT {server.server_address[1]}", flush=True)
    # Exit when the parent test process closes our stdin.
    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
