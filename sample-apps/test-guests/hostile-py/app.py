"""Test guest: a Python app that tries every way out of its sandbox
through the standard WASI interfaces its toolchain imports (files,
sockets, name lookup, environment, arguments, stdin). Each attempt is
caught and reported; domicile must make every one fail inside the app.
(Its toolchain imports no wasi:http; the JavaScript guest tries HTTP.)

Input: {"port": P, "escape": "/abs/path/to/a/file/it/must/not/create"}.
"""

import json
import os
import socket
import sys

import wit_world


def attempt(action):
    try:
        return {"got": repr(action())[:200]}
    except BaseException as refused:  # noqa: BLE001 - the report is the point
        return {"refused": f"{type(refused).__name__}: {refused}"[:300]}


def write(path):
    with open(path, "w") as f:
        f.write("escaped")
    return path


class WitWorld(wit_world.WitWorld):
    def run(self, input: str) -> str:
        options = json.loads(input)
        port, escape = options["port"], options["escape"]
        print("hostile python guest starting")
        report = {
            "read-passwd": attempt(lambda: open("/etc/passwd").read()),
            "list-root": attempt(lambda: os.listdir("/")),
            "list-cwd": attempt(lambda: os.listdir(".")),
            "write-absolute": attempt(lambda: write(escape)),
            "write-relative": attempt(lambda: write("escaped.txt")),
            "connect": attempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM).connect(("127.0.0.1", port))),
            "udp": attempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("127.0.0.1", port))),
            # Bytes, so that CPython does not need its `idna` codec first.
            "resolve": attempt(lambda: socket.getaddrinfo(b"localhost", port)),
            "environment": {"got": len(os.environ)},
            "arguments": {"got": len([a for a in sys.argv if a])},
            "stdin": attempt(lambda: sys.stdin.read()),
        }
        print("hostile python guest done", file=sys.stderr)
        return json.dumps(report)
