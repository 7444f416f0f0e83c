"""domicile's guest SDK for Python apps (componentize-py).

A thin layer over the bindings componentize-py generates from `wit/`: it
turns the host's WIT errors into Python exceptions, iterates queries
without hand-written cursor loops, and runs a service function from JSON
to JSON. Build an app with it by adding this directory to the module path:

    componentize-py -d wit -w service componentize -p . -p sample-apps/sdk-python app -o app.wasm

    import wit_world
    import domicile

    def summary(options):
        total = sum(doc["amount"] for _, doc in domicile.query("io.domicile.bank.operation"))
        return {"total": total}

    class WitWorld(wit_world.WitWorld):
        def run(self, input: str) -> str:
            return domicile.serve(input, summary)

`print` writes to the app's log (stdout), which the resident can read;
`domicile.log` writes with a level.
"""

import json
import traceback

from componentize_py_types import Err
from wit_world.imports import clock as _clock
from wit_world.imports import data as _data
from wit_world.imports import egress as _egress
from wit_world.imports import log as _log
from wit_world.imports import notify as _notify
from wit_world.imports import types as _types

# The largest batch the host hands out per call.
MAX_BATCH = 1000


class DomicileError(Exception):
    """A host call was refused; the message says why."""


class Denied(DomicileError):
    """The resident did not grant this access, or the manifest did not declare it."""


class NotFound(DomicileError):
    """No such document."""


class Invalid(DomicileError):
    """A malformed request: unknown doctype, bad JSON, a body the schema refuses."""


class LimitReached(DomicileError):
    """A limit of this run or of the resident's space was reached."""


_ERRORS = {
    _types.Error_Denied: Denied,
    _types.Error_NotFound: NotFound,
    _types.Error_Invalid: Invalid,
    _types.Error_Limit: LimitReached,
}


def _call(function, *args):
    try:
        return function(*args)
    except Err as refused:
        kind = _ERRORS.get(type(refused.value), DomicileError)
        raise kind(getattr(refused.value, "value", str(refused.value))) from None


class Body(dict):
    """A document's body: a dict that, asked for a field it does not hold,
    says why it may be missing, as the Rust SDK does: a field the resident
    did not grant is withheld from the app."""

    def __missing__(self, key):
        raise KeyError(
            f"{key!r}: this document has no `{key}`; if documents of this doctype have it, it is withheld "
            f"from this app: declare it in the manifest's `fields` and ask the resident to grant it, "
            f"or use .get({key!r}) if it may be absent"
        )


def _body(text):
    value = json.loads(text)
    return Body(value) if isinstance(value, dict) else value


def query(doctype, selector=None, *, sort=None, descending=False, limit=None, batch=500):
    """Yields `(id, body)` for each document of `doctype` that matches
    `selector` (a dict: `{"kind": "load-curve", "at": {"$gte": "2026-03"}}`),
    in id order or sorted on one field. `body` holds only the fields the
    resident granted."""
    order = _data.SortOrder(field=sort, descending=descending) if sort else None
    options = _data.QueryOptions(limit=limit, sort=order)
    cursor = _call(_data.query, doctype, json.dumps(selector or {}), options)
    with cursor:
        while True:
            docs = _call(cursor.next, min(batch, MAX_BATCH))
            if not docs:
                return
            for doc in docs:
                yield doc.id, _body(doc.body)


def get(doctype, id):
    """The body of one document (only its granted fields); `NotFound` if there is none."""
    return _body(_call(_data.get, doctype, id).body)


def put(doctype, body, id=None):
    """Creates or replaces a document; returns its id."""
    return _call(_data.put, doctype, id, json.dumps(body))


def delete(doctype, id):
    _call(_data.delete, doctype, id)


def now_ms():
    """Milliseconds since the Unix epoch, from the host's clock."""
    return _clock.now_ms()


def notify(title, body):
    """Leaves a message for the resident (`domicile notifications`)."""
    _call(_notify.send, title, body)


def ask_to_send(destination, payload, purpose):
    """Puts `payload` (any JSON value) in the resident's outbox for
    `destination`, which the manifest must declare; nothing leaves until
    they approve. Returns the request's id."""
    return _call(_egress.request, destination, json.dumps(payload), purpose)


def _writer(level):
    return staticmethod(lambda message: _log.write(level, str(message)))


class log:
    """The app's log, readable by the resident. Never write personal data here."""

    debug = _writer(_log.Level.DEBUG)
    info = _writer(_log.Level.INFO)
    warn = _writer(_log.Level.WARN)
    error = _writer(_log.Level.ERROR)


def serve(input, compute):
    """Runs `compute(options)` for a service's `run`: the input's JSON
    (`{}` when empty) in, a JSON-serialisable result out. A refused host
    call or a `ValueError` becomes the run's error message for the
    resident; any other exception too, with its traceback in the app's log."""
    try:
        options = json.loads(input) if input.strip() else {}
        if not isinstance(options, dict):
            raise ValueError("the input must be a JSON object")
        return json.dumps(compute(options), ensure_ascii=False)
    except (DomicileError, ValueError) as refused:
        raise Err(str(refused)) from None
    except Exception as bug:
        log.error(traceback.format_exc())
        raise Err(f"{type(bug).__name__}: {bug}") from None


class view:
    """Blocks of a view: what domicile draws next to a service's output
    (see "Views" in the README). A service returns them under "view":

        return {"months": months, "view": [
            domicile.view.heading("Tariff"),
            domicile.view.number("Yearly saving", 42.5, "EUR"),
            domicile.view.chart("bar", "kWh per month", months, {"kWh": values}, unit="kWh"),
        ]}

    Strings are plain text: no markup, no links, at most 120 characters
    (a paragraph 2000); pass text that comes from data through `quote`."""

    @staticmethod
    def heading(text):
        return {"heading": text}

    @staticmethod
    def text(text):
        return {"text": text}

    @staticmethod
    def number(label, value, unit=None, delta=None, versus=None):
        figure = {"label": label, "value": value}
        for key, given in (("unit", unit), ("delta", delta), ("versus", versus)):
            if given is not None:
                figure[key] = given
        return {"number": figure}

    @staticmethod
    def table(columns, rows, title=None):
        table = {"columns": list(columns), "rows": [list(row) for row in rows]}
        if title is not None:
            table["title"] = title
        return {"table": table}

    @staticmethod
    def chart(kind, title, x, series, unit=None):
        """`kind`: "bar", "line" or "stacked-bar"; `series`: {name: values},
        one value (or None) per x label."""
        chart = {"kind": kind, "title": title, "x": list(x),
                 "series": [{"name": name, "values": list(values)} for name, values in series.items()]}
        if unit is not None:
            chart["unit"] = unit
        return {"chart": chart}

    @staticmethod
    def quote(text):
        """Text from data (a label, a name) made fit for a view: control and
        reordering characters dropped, markup and links defused with
        look-alike characters, cut to 120 characters."""
        return _quote(text)


_HAZARDS = set("\u061c\u2028\u2029\u202a\u202b\u202c\u202d\u202e\ufeff\ufff9\ufffa\ufffb") | {
    chr(c) for c in list(range(0x200B, 0x2010)) + list(range(0x2060, 0x206A))}


def _quote(text):
    kept = "".join(c for c in str(text) if not (c in _HAZARDS or ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0))
    out = ""
    i = 0
    while i < len(kept):
        c, following = kept[i], kept[i + 1] if i + 1 < len(kept) else ""
        if c == "<" and (following.isascii() and following.isalpha() or following in ("/", "!", "?")) and following:
            out += "\u2039"
        elif c == "/" and following == "/" and out.endswith(":"):
            out += "\u2044\u2044"
            i += 1
        elif c == "." and out.lower().endswith("www"):
            out += "\u2024"
        elif c == ":" and (out.lower().endswith("javascript") or out.lower().endswith("mailto")):
            out += "\ua789"
        else:
            out += c
        i += 1
    return out if len(out) <= 120 else out[:119] + "\u2026"
