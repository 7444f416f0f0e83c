"""{{id}}: a domicile importer. `domicile dev` imports fixtures/ at every save."""

import json

import wit_world
import domicile
from componentize_py_types import Err

DOCTYPE = "{{id}}.line"


class WitWorld(wit_world.WitWorld):
    def import_(self, file_name: str, bytes: bytes) -> str:
        try:
            text = bytes.decode("utf-8")
        except UnicodeDecodeError:
            raise Err(f"{file_name} is not UTF-8 text")
        kept = 0
        for n, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                domicile.put(DOCTYPE, {"file": file_name, "line": n, "text": line}, id=f"{file_name}:{n}")
                kept += 1
        domicile.log.info(f"{kept} lines kept")
        return json.dumps({"lines": kept})
