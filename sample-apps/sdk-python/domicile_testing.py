"""Test a domicile Python app natively, with plain CPython: no component,
no home. The app's `app.py` is loaded with stand-ins for the modules
componentize-py generates (`wit_world`, `wit_world.imports.*`,
`componentize_py_types`), which answer from an in-memory test home:

    from domicile_testing import TestHome

    home = TestHome().with_docs("io.domicile.mobility.trip", [{"mode": "bike", "distance_m": 4200}])
    output = home.run("app.py", {})           # the service's JSON output, parsed
    assert output["bike_km"] == 4.2
    assert home.logs == ["info: 4.2 km by bike"]

`run` raises `AppFailed` with the run's message when the app returns an
error; `run_import("app.py", "file.csv", data)` runs an importer. What differs from a real home: every document is readable and
writable (grants and field projections are the host's: check them with
`domicile dev`); selectors match fields (dotted paths too) by equality or
with `$gt`, `$gte`, `$lt`, `$lte`, `$ne`, `$in`; the clock is fixed
(2026-03-01T12:00:00Z unless `at`). `print` goes to `logs` as `stdout: ...`.
"""

import contextlib
import enum
import importlib.util
import io
import json
import os
import sys
import types as pytypes


class AppFailed(Exception):
    """The app's run returned an error (its message)."""


class _Err(Exception):
    def __init__(self, value):
        super().__init__(value)
        self.value = value


def _error(name):
    class Refusal:
        def __init__(self, value):
            self.value = value
    Refusal.__name__ = name
    return Refusal


class TestHome:
    """The documents, log, notifications and outbox of one test."""

    def __init__(self):
        self.docs = {}          # doctype -> {id: body}
        self.logs = []
        self.notifications = []
        self.outbox = []
        self.now_ms = 1_772_366_400_000
        self._next_id = 0

    def with_docs(self, doctype, bodies):
        for body in bodies:
            self._next_id += 1
            self.docs.setdefault(doctype, {})[f"doc-{self._next_id}"] = body
        return self

    def with_jsonl(self, doctype, path):
        with open(path, encoding="utf-8") as lines:
            return self.with_docs(doctype, [json.loads(line) for line in lines if line.strip()])

    def at(self, now_ms):
        self.now_ms = now_ms
        return self

    def documents(self, doctype):
        return dict(self.docs.get(doctype, {}))

    def run(self, app_path, options=None):
        """Loads the service at `app_path` and runs it with `options` (a dict) as input."""
        world = self._load(app_path)
        stdout = io.StringIO()
        try:
            with contextlib.redirect_stdout(stdout):
                output = world.run(json.dumps(options or {}))
        except _Err as failed:
            raise AppFailed(failed.value) from None
        finally:
            self.logs.extend(f"stdout: {line}" for line in stdout.getvalue().splitlines() if line)
        return json.loads(output)

    def run_import(self, app_path, file_name, data):
        """Loads the importer at `app_path` and imports `data` (bytes) as `file_name`."""
        world = self._load(app_path)
        try:
            return json.loads(world.import_(file_name, data))
        except _Err as failed:
            raise AppFailed(failed.value) from None

    # The stand-ins of the generated modules, bound to this home.
    def _load(self, app_path):
        modules = self._modules()
        saved = {name: sys.modules.get(name) for name in list(modules) + ["domicile"]}
        sys.modules.update(modules)
        sys.modules.pop("domicile", None)
        here = os.path.dirname(os.path.abspath(__file__))
        sys.path.insert(0, here)
        try:
            spec = importlib.util.spec_from_file_location("domicile_app_under_test", app_path)
            app = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(app)
            return app.WitWorld()
        finally:
            sys.path.remove(here)
            for name, module in saved.items():
                if module is None:
                    sys.modules.pop(name, None)
                else:
                    sys.modules[name] = module

    def _modules(self):
        home = self
        types_ = pytypes.ModuleType("wit_world.imports.types")
        for name in ("Error_Denied", "Error_NotFound", "Error_Invalid", "Error_Limit"):
            setattr(types_, name, _error(name))

        class Doc:
            def __init__(self, id, body):
                self.id, self.body = id, body

        class SortOrder:
            def __init__(self, field, descending):
                self.field, self.descending = field, descending

        class QueryOptions:
            def __init__(self, limit, sort):
                self.limit, self.sort = limit, sort

        class Cursor:
            def __init__(self, docs):
                self.docs = docs

            def next(self, n):
                batch, self.docs = self.docs[:n], self.docs[n:]
                return batch

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

        def get(doctype, id):
            body = home.docs.get(doctype, {}).get(id)
            if body is None:
                raise _Err(types_.Error_NotFound(f"no {doctype} document {id}"))
            return Doc(id, json.dumps(body))

        def put(doctype, id, body):
            body = json.loads(body)
            if not isinstance(body, dict):
                raise _Err(types_.Error_Invalid("a document is a JSON object"))
            if id is None:
                home._next_id += 1
                id = f"doc-{home._next_id}"
            home.docs.setdefault(doctype, {})[id] = body
            return id

        def delete(doctype, id):
            if home.docs.get(doctype, {}).pop(id, None) is None:
                raise _Err(types_.Error_NotFound(f"no {doctype} document {id}"))

        def query(doctype, selector, options):
            selector = json.loads(selector)
            found = [(i, b) for i, b in sorted(home.docs.get(doctype, {}).items())
                     if all(_matches(_field(b, f), c) for f, c in selector.items())]
            if options.sort:
                found.sort(key=lambda d: _sort_key(_field(d[1], options.sort.field)), reverse=options.sort.descending)
            if options.limit is not None:
                found = found[: options.limit]
            return Cursor([Doc(i, json.dumps(b)) for i, b in found])

        data = pytypes.ModuleType("wit_world.imports.data")
        data.SortOrder, data.QueryOptions, data.get, data.put, data.delete, data.query = (
            SortOrder, QueryOptions, get, put, delete, query)

        log = pytypes.ModuleType("wit_world.imports.log")
        log.Level = enum.Enum("Level", ["DEBUG", "INFO", "WARN", "ERROR"])
        log.write = lambda level, message: home.logs.append(f"{level.name.lower()}: {message}")
        clock = pytypes.ModuleType("wit_world.imports.clock")
        clock.now_ms = lambda: home.now_ms
        notify = pytypes.ModuleType("wit_world.imports.notify")
        notify.send = lambda title, body: home.notifications.append((title, body))
        egress = pytypes.ModuleType("wit_world.imports.egress")

        def request(destination, payload, purpose):
            home.outbox.append((destination, json.loads(payload), purpose))
            return str(len(home.outbox))
        egress.request = request

        imports = pytypes.ModuleType("wit_world.imports")
        for name, module in (("types", types_), ("data", data), ("log", log), ("clock", clock),
                             ("notify", notify), ("egress", egress)):
            setattr(imports, name, module)
        world = pytypes.ModuleType("wit_world")
        world.imports = imports
        world.WitWorld = type("WitWorld", (), {})
        runtime_types = pytypes.ModuleType("componentize_py_types")
        runtime_types.Err = _Err
        modules = {"wit_world": world, "wit_world.imports": imports, "componentize_py_types": runtime_types}
        for name in ("types", "data", "log", "clock", "notify", "egress"):
            modules[f"wit_world.imports.{name}"] = getattr(imports, name)
        return modules


def _field(body, path):
    for key in path.split("."):
        if not isinstance(body, dict) or key not in body:
            return None
        body = body[key]
    return body


def _sort_key(value):
    return (value is not None, value if value is not None else 0)


def _matches(value, condition):
    if not (isinstance(condition, dict) and condition and all(k.startswith("$") for k in condition)):
        return value == condition
    checks = {
        "$gt": lambda o: value is not None and value > o,
        "$gte": lambda o: value is not None and value >= o,
        "$lt": lambda o: value is not None and value < o,
        "$lte": lambda o: value is not None and value <= o,
        "$ne": lambda o: value != o,
        "$in": lambda o: value in o,
    }
    for op, operand in condition.items():
        if op not in checks:
            raise ValueError(f"the test home does not know the selector operator {op}")
        if not checks[op](operand):
            return False
    return True
