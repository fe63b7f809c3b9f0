"""``.. results-table:: <results file> <table> [<table> ...]``: a benchmark's printed table,
read from ``benchmarks/results/<results file>.json`` when the docs are built.

The text is :func:`benchmarks._results.format_table` of the stored table, the
same function the benchmark printed it with, so the docs show what the run
printed. A missing file or table fails the build (with ``-W``). A line under
the tables names the machine the run was on.
"""

import importlib.util
import json
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import Directive
from sphinx.util import logging

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
logger = logging.getLogger(__name__)


def _format_table():
    spec = importlib.util.spec_from_file_location("_results", ROOT / "benchmarks" / "_results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.format_table


class ResultsTable(Directive):
    required_arguments = 2
    optional_arguments = 20

    def run(self):
        name, *tables = self.arguments
        path = RESULTS / f"{name}.json"
        if not path.exists():
            logger.warning(f"results file {path} is missing: run benchmarks/{name}.py",
                           location=self.state_machine.get_source_and_line(self.lineno))
            return []
        data = json.loads(path.read_text())
        format_table = _format_table()
        texts = []
        for table in tables:
            if table not in data.get("tables", {}):
                logger.warning(f"{path.name} has no table {table!r}",
                               location=self.state_machine.get_source_and_line(self.lineno))
                continue
            texts.append(format_table(data["tables"][table]))
        m = data.get("machine", {})
        where = (f"(benchmarks/results/{name}.json: {m.get('processor', '?')}, "
                 f"{m.get('cpu_count', '?')} cores, {m.get('jax_backend', '?')}; "
                 f"jax {m.get('jax', '?')}, skbnn {m.get('skbnn', '?')})")
        block = nodes.literal_block("\n\n".join(texts), "\n\n".join(texts))
        return [block, nodes.paragraph(text=where)]


def setup(app):
    app.add_directive("results-table", ResultsTable)
    return {"parallel_read_safe": True}
