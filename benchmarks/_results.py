"""Benchmark results as files: what a script printed, with the machine and versions.

Every benchmark script writes ``benchmarks/results/<name>.json``::

    {"machine": {...}, "settings": {...}, "tables": {table: {"title", "columns",
     "rows", "notes"}}, "raw": ...}

``tables`` hold the printed tables cell by cell (formatted strings) and the
lines printed under them; the docs render them from the file
(``docs/_ext/results_tables.py``), so a figure in the docs is the figure the
run printed, and ``tests/test_docs_figures.py`` checks that every figure the
docs' prose quotes is in some results file.
"""

import json
import os
import platform

__all__ = ["format_table", "machine", "update"]

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def machine():
    """The machine and the versions a result was measured with."""
    import jax
    import sklearn

    import skbnn

    devices = jax.devices()
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "jax": jax.__version__,
        "jax_backend": jax.default_backend(),
        "devices": [str(d.device_kind) for d in devices],
        "sklearn": sklearn.__version__,
        "skbnn": skbnn.__version__,
    }


def format_table(table):
    """The text a script prints for one table (title, aligned columns, notes)."""
    columns, rows = table["columns"], table["rows"]
    widths = [max(len(str(c)), *(len(str(r[i])) for r in rows)) if rows else len(str(c))
              for i, c in enumerate(columns)]
    lines = [table.get("title", "")] if table.get("title") else []
    lines.append("  ".join(str(c).rjust(w) if i else str(c).ljust(w)
                           for i, (c, w) in enumerate(zip(columns, widths))))
    for row in rows:
        lines.append("  ".join(str(v).rjust(w) if i else str(v).ljust(w)
                               for i, (v, w) in enumerate(zip(row, widths))))
    lines.extend(table.get("notes", []))
    return "\n".join(lines)


def update(name, *, tables=None, settings=None, raw=None, path=None):
    """Merge ``tables`` (and ``settings``, ``raw``) into ``results/<name>.json``.

    Tables of the same name are replaced; others already in the file stay, so
    scripts run with a subset of their rows add to the file. Returns the path.
    """
    path = path or os.path.join(RESULTS, f"{name}.json")
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    data = {}
    if os.path.exists(path):
        with open(path) as f:
            data = json.load(f)
    data["machine"] = machine()
    if settings is not None:
        data.setdefault("settings", {}).update(settings)
    if tables:
        data.setdefault("tables", {}).update(tables)
    if raw is not None:
        data.setdefault("raw", {}).update(raw)
    with open(path, "w") as f:
        json.dump(data, f, indent=1, default=float)
    return path
