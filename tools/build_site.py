"""Render the course as a static site: every notebook executed, one HTML page per lesson.

    python tools/build_site.py [NOTEBOOK ...] [--out site]

Each notebook runs top to bottom in a fresh Jupyter kernel (``nbclient``, the executor that
nbconvert and nbmake use), in ``notebooks/`` so that its relative paths work. A cell that raises
stops the build with the notebook's name: a page is never written with an error in it. The page
holds the markdown, the code and every output; figures are embedded as PNG ``data:`` URIs, so a
page is one self-contained file that opens offline. ``index.html`` lists the lessons in the order
of ``lessons/README.md``'s syllabus, with their prerequisites, and links two more pages: the
report of ``minivision tour`` (``tour/index.html``, the whole pipeline on one photograph) and
``api.html``, every public name of the package with its signature and docstring, and
``syllabus.html``, ``lessons/README.md`` with the course plan.

Why a small renderer here instead of nbconvert's HTML exporter: the course's environment has
``nbclient`` and ``nbformat`` (they come with nbmake and with JupyterLab) but not nbconvert's
exporters, and the notebooks only use a small part of markdown (headings, paragraphs, lists,
tables, code, emphasis, links). Math stays as its TeX source, which reads well enough in a page.
"""

from __future__ import annotations

import argparse
import base64
import html
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
SYLLABUS = ROOT / "lessons" / "README.md"

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 980px; margin: 2em auto; padding: 0 1em;
       line-height: 1.5; color: #222; }
pre { background: #f6f8fa; padding: .6em .8em; overflow-x: auto; border-radius: 4px; }
pre.output { background: #fff; border-left: 3px solid #ccc; }
pre.stderr { background: #fff6f0; border-left: 3px solid #e8a070; }
code { background: #f2f2f2; padding: 0 .2em; border-radius: 3px; }
pre code { background: none; padding: 0; }
table { border-collapse: collapse; margin: 1em 0; }
td, th { border: 1px solid #ccc; padding: .25em .6em; vertical-align: top; }
img { max-width: 100%; }
nav { margin-bottom: 1.5em; }
"""


# ---------------------------------------------------------------------------------------------
# markdown (the subset the notebooks use)


def _inline(text: str) -> str:
    """Escape ``text`` and render code spans, links, bold and italic."""
    spans: list[str] = []

    def keep(m):  # code spans are taken out first so that nothing inside them is rendered
        spans.append(f"<code>{html.escape(m.group(1))}</code>")
        return f"\x00{len(spans) - 1}\x00"

    text = re.sub(r"`([^`]+)`", keep, text)
    text = html.escape(text, quote=False)
    text = re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", r'<a href="\2">\1</a>', text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    text = re.sub(r"(?<![\w*\\])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<em>\1</em>", text)
    return re.sub("\x00(\\d+)\x00", lambda m: spans[int(m.group(1))], text)


def _row_cells(row: str) -> list[str]:
    """The cells of one ``| a | b |`` table row; a cell may hold an escaped ``\\|`` (``k/\\|C\\|``)."""
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", row.strip().strip("|"))]


def _table(rows: list[str]) -> str:
    cells = [_row_cells(r) for r in rows]
    head, body = cells[0], [r for r in cells[2:]]
    out = ["<table><tr>" + "".join(f"<th>{_inline(c)}</th>" for c in head) + "</tr>"]
    out += ["<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in body]
    return "\n".join(out) + "</table>"


def markdown_to_html(source: str) -> str:
    """Block structure: headings, fenced and indented code, tables, lists, paragraphs."""
    lines, out, i = source.splitlines(), [], 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
        elif line.startswith("```"):
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            out.append(f"<pre><code>{html.escape(chr(10).join(lines[i + 1 : j]))}</code></pre>")
            i = j + 1
        elif line.startswith("    "):
            j = i
            while j < len(lines) and (lines[j].startswith("    ") or not lines[j].strip()):
                j += 1
            block = "\n".join(x[4:] for x in lines[i:j]).rstrip()
            out.append(f"<pre><code>{html.escape(block)}</code></pre>")
            i = j
        elif m := re.match(r"(#{1,6})\s+(.*)", line):
            n = len(m.group(1))
            out.append(f"<h{n}>{_inline(m.group(2))}</h{n}>")
            i += 1
        elif (
            line.lstrip().startswith("|")
            and i + 1 < len(lines)
            and set(lines[i + 1].strip()) <= set("|-: ")
        ):
            j = i
            while j < len(lines) and lines[j].lstrip().startswith("|"):
                j += 1
            out.append(_table(lines[i:j]))
            i = j
        elif re.match(r"\s*([*-]|\d+\.)\s", line):
            tag = "ol" if re.match(r"\s*\d+\.", line) else "ul"
            items: list[str] = []
            while i < len(lines) and lines[i].strip():
                if m := re.match(r"\s*([*-]|\d+\.)\s+(.*)", lines[i]):
                    items.append(m.group(2))
                else:  # a continuation line of the item above
                    items[-1] += " " + lines[i].strip()
                i += 1
            out.append(f"<{tag}>" + "".join(f"<li>{_inline(x)}</li>" for x in items) + f"</{tag}>")
        else:
            j = i
            while (
                j < len(lines)
                and lines[j].strip()
                and not re.match(r"#|```|\s*([*-]|\d+\.)\s|\s*\|", lines[j])
            ):
                j += 1
            j = max(j, i + 1)
            out.append(f"<p>{_inline(' '.join(x.strip() for x in lines[i:j]))}</p>")
            i = j
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# notebooks


def _output_html(output) -> str:
    kind = output["output_type"]
    if kind == "stream":
        cls = "stderr" if output.get("name") == "stderr" else "output"
        return f'<pre class="{cls}">{html.escape(output["text"])}</pre>'
    if kind == "error":  # never reached from build(): execution stops first
        return f'<pre class="error">{html.escape(chr(10).join(output["traceback"]))}</pre>'
    data = output.get("data", {})
    if "image/png" in data:
        png = data["image/png"].replace("\n", "")
        base64.b64decode(png, validate=True)  # a broken figure fails the build, not the reader
        return f'<img class="figure" alt="figure" src="data:image/png;base64,{png}">'
    if "text/html" in data:
        return f'<div class="output">{data["text/html"]}</div>'
    if "text/plain" in data:
        return f'<pre class="output">{html.escape(data["text/plain"])}</pre>'
    return ""


def notebook_to_html(nb, title: str) -> str:
    """One page: markdown rendered, code shown, outputs below their cell."""
    body = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            body.append(markdown_to_html(cell.source))
        elif cell.cell_type == "code":
            body.append(f'<pre class="code"><code>{html.escape(cell.source)}</code></pre>')
            body.extend(_output_html(o) for o in cell.get("outputs", []))
    return _page(title, '<nav><a href="index.html">← all lessons</a></nav>\n' + "\n".join(body))


def _page(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n"
        f"<body>\n{body}\n</body></html>\n"
    )


def execute(path: Path, timeout: int = 1800):
    """The notebook at ``path``, run top to bottom in its own folder (RuntimeError on an error)."""
    import nbclient
    import nbformat

    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=timeout, resources={"metadata": {"path": str(path.parent)}}
    )
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as e:
        raise RuntimeError(f"{path.name} stopped with an error:\n{e}") from None
    return nb


def _title(nb, fallback: str) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown" and (m := re.search(r"^#\s+(.+)$", cell.source, re.M)):
            return m.group(1).strip()
    return fallback


def syllabus_prerequisites(text: str) -> dict[str, str]:
    """{"00": "NumPy broadcasting", ...} from the table of lessons/README.md."""
    out = {}
    for row in text.splitlines():
        cells = _row_cells(row)
        if len(cells) >= 3 and re.fullmatch(r"\d\d", cells[0]):
            out[cells[0]] = cells[2]
    return out


# the packages whose ``__all__`` the API page documents, in the order of the pipeline
API_PACKAGES = (
    "minivision.ops",
    "minivision.nn",
    "minivision.nn.functional",
    "minivision.proposals",
    "minivision.data",
    "minivision.eval",
    "minivision.detection",
    "minivision.training",
)


def api_page() -> str:
    """Every name in the ``__all__`` of :data:`API_PACKAGES`: its signature and its docstring."""
    import importlib
    import inspect

    toc, parts = [], []
    for package in API_PACKAGES:
        module = importlib.import_module(package)
        summary = (inspect.getdoc(module) or "").split("\n\n")[0].replace("``", "`")
        toc.append(f'<li><a href="#{package}">{package}</a> — {_inline(summary)}</li>')
        parts.append(f'<h2 id="{package}">{package}</h2>\n<p>{_inline(summary)}</p>')
        for name in module.__all__:
            obj = getattr(module, name)
            try:
                signature = str(inspect.signature(obj))
            except (TypeError, ValueError):
                signature = ""
            doc = inspect.getdoc(obj) or "(no docstring)"
            anchor = f"{package}.{name}"
            parts.append(
                f'<h3 id="{anchor}"><code>{html.escape(name + signature)}</code></h3>\n'
                f'<pre class="doc">{html.escape(doc)}</pre>'
            )
    body = (
        '<nav><a href="index.html">← all lessons</a></nav>\n<h1>minivision API</h1>\n'
        "<p>The public names of each package (its <code>__all__</code>), with their signatures and "
        "docstrings. The top-level package <code>minivision</code> re-exports the operators and "
        "losses under the same names.</p>\n<ul>" + "".join(toc) + "</ul>\n" + "\n".join(parts)
    )
    return _page("minivision API", body)


def syllabus_page(built: set[str]) -> str:
    """``lessons/README.md`` as a page; its links to the notebooks point to their pages (to the
    ones that were built: a link to a page that is not there is left as plain text)."""

    def relink(m):  # m: the notebook's stem, the link text
        stem, text = m.group(1), m.group(2)
        return f'<a href="{stem}.html">{text}</a>' if stem in built else text

    body = markdown_to_html(SYLLABUS.read_text())
    body = re.sub(r'<a href="\.\./notebooks/([^"]+)\.ipynb">(.*?)</a>', relink, body)
    return _page(
        "minivision — syllabus", '<nav><a href="index.html">← all lessons</a></nav>\n' + body
    )


def write_tour(out: Path) -> Path:
    """``minivision tour`` into ``out/tour`` (its figures and its ``index.html``)."""
    folder = out / "tour"
    run = subprocess.run(
        [sys.executable, "-m", "minivision", "tour", "--out", str(folder)],
        capture_output=True,
        text=True,
    )
    if run.returncode != 0:
        raise RuntimeError(f"minivision tour stopped with an error:\n{run.stderr[-3000:]}")
    return folder / "index.html"


def build(notebooks: list[Path], out: Path, tour: bool = True) -> list[Path]:
    """Execute ``notebooks`` and write their pages, ``api.html``, the tour (unless ``tour`` is
    False) and ``index.html`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    prereq = syllabus_prerequisites(SYLLABUS.read_text()) if SYLLABUS.is_file() else {}
    rows, pages = [], []
    for path in sorted(notebooks):
        start = time.perf_counter()
        nb = execute(path)
        print(f"executed {path.name} in {time.perf_counter() - start:.0f} s", flush=True)
        title = _title(nb, path.stem)
        page = out / (path.stem + ".html")
        page.write_text(notebook_to_html(nb, title))
        pages.append(page)
        number = path.name[:2]
        rows.append(
            f'<tr><td>{html.escape(number)}</td><td><a href="{page.name}">{html.escape(title)}</a></td>'
            f"<td>{_inline(prereq.get(number, ''))}</td></tr>"
        )
    (out / "api.html").write_text(api_page())
    (out / "syllabus.html").write_text(syllabus_page({p.stem for p in pages}))
    more = [
        '<li><a href="syllabus.html">Syllabus</a>: the lessons, their exercises and checks, '
        "a course plan for instructors</li>",
        '<li><a href="api.html">API</a>: every public function and class, with its docstring</li>',
    ]
    if tour:
        write_tour(out)
        more.insert(
            0,
            '<li><a href="tour/index.html">The tour</a>: the pipeline so far on one photograph '
            "(<code>minivision tour</code>)</li>",
        )
    index = (
        "<h1>minivision — the course</h1>\n"
        "<p>Every lesson notebook, executed, with its figures and outputs. The exercises are in "
        "<code>lessons/</code> and graded with <code>minivision check NN lessons/NN_*.py</code>.</p>\n"
        "<ul>" + "".join(more) + "</ul>\n"
        "<table><tr><th>#</th><th>lesson</th><th>prerequisites</th></tr>\n"
        + "\n".join(rows)
        + "</table>"
    )
    (out / "index.html").write_text(_page("minivision — the course", index))
    return pages


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("notebooks", nargs="*", type=Path, help="notebooks to render (default: all)")
    p.add_argument("--out", type=Path, default=ROOT / "site", help="output folder (default: site/)")
    p.add_argument("--no-tour", action="store_true", help="leave out the tour's report")
    args = p.parse_args(argv)
    notebooks = [n.resolve() for n in args.notebooks] or sorted(
        NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")
    )
    try:
        pages = build(notebooks, args.out, tour=not args.no_tour)
    except RuntimeError as e:
        print(e, file=sys.stderr)
        return 1
    print(f"{len(pages)} pages and index.html in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
