"""tools/build_site.py: the course site (`make site`) — executed pages with their figures, no errors."""

import importlib.util
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("build_site", ROOT / "tools" / "build_site.py")
build_site = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build_site)


def _notebook(path, *cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(c[3:])
        if c.startswith("md:")
        else nbformat.v4.new_code_cell(c)
        for c in cells
    ]
    nbformat.write(nb, path)
    return path


def _links(page: Path) -> list[str]:
    """The page's links and image sources, less anchors and embedded images."""
    targets = re.findall(r"""(?:href|src)=["']([^"'#]+)""", page.read_text())
    return [t for t in targets if not t.startswith(("data:", "http:", "https:"))]


def test_a_page_holds_every_figure_and_output(tmp_path):
    nb = _notebook(
        tmp_path / "99_tiny.ipynb",
        "md:# Lesson 99 — A tiny lesson\n\nSome **bold** text and `code`.\n\n| a | b |\n|---|---|\n| 1 | 2 |",
        "import matplotlib.pyplot as plt\nplt.plot([0, 1], [1, 0])\nplt.show()",
        "print('printed', 6 * 7)",
        "fig, axes = plt.subplots(1, 2)\nplt.show()\nplt.imshow([[0, 1], [1, 0]])\nplt.show()",
        "6 * 7 + 1",
    )
    (page,) = build_site.build([nb], tmp_path / "site")
    text = page.read_text()
    assert page.name == "99_tiny.html"
    assert text.count('<img class="figure"') == 3  # one per plt.show(), embedded as PNG
    assert len(re.findall(r'src="data:image/png;base64,[A-Za-z0-9+/=]{100,}"', text)) == 3
    assert "printed 42" in text and "43" in text
    assert "<h1>Lesson 99 — A tiny lesson</h1>" in text
    assert "<strong>bold</strong>" in text and "<code>code</code>" in text and "<td>2</td>" in text
    assert 'class="error"' not in text and "Traceback" not in text
    site = tmp_path / "site"
    index = (site / "index.html").read_text()
    assert '<a href="99_tiny.html">Lesson 99 — A tiny lesson</a>' in index
    assert '<a href="tour/index.html">' in index and '<a href="api.html">' in index
    api = (site / "api.html").read_text()
    assert '<h3 id="minivision.ops.box_iou"><code>box_iou(' in api
    assert "Traceback" not in api
    pages = [site / n for n in ("index.html", "api.html", "syllabus.html", "tour/index.html")]
    pages.append(page)
    for page_ in pages:  # every link and image between the pages resolves
        for target in _links(page_):
            assert (page_.parent / target).is_file(), f"{page_.name}: {target}"
    assert len(_links(site / "tour" / "index.html")) >= 5  # the tour's figures


def test_a_cell_that_raises_stops_the_build(tmp_path):
    nb = _notebook(tmp_path / "98_broken.ipynb", "print('fine')", "1 / 0")
    with pytest.raises(RuntimeError, match="98_broken.ipynb stopped with an error"):
        build_site.build([nb], tmp_path / "site", tour=False)
    assert not (tmp_path / "site" / "98_broken.html").exists()


def test_a_lesson_notebook_renders_with_its_figures(tmp_path):
    """Lesson 05 (a small one), as `make site` renders it: its figures, the syllabus row."""
    path = ROOT / "notebooks" / "05_roi_pooling.ipynb"
    shows = sum(
        c.source.count("plt.show()") for c in nbformat.read(path, 4).cells if c.cell_type == "code"
    )
    (page,) = build_site.build([path], tmp_path / "site", tour=False)
    text = page.read_text()
    assert shows > 0 and text.count('<img class="figure"') == shows
    assert 'class="error"' not in text and "Traceback" not in text
    assert "minivision check 05 lessons/05_roi_pool.py" in text
    index = (tmp_path / "site" / "index.html").read_text()
    assert '<a href="05_roi_pooling.html">' in index and "lesson 00" in index  # its prerequisites
    syllabus = (tmp_path / "site" / "syllabus.html").read_text()
    assert '<a href="05_roi_pooling.html">RoI pooling</a>' in syllabus  # a lesson that was built
    assert '<a href="04_nms.html">' not in syllabus and "Non-maximum suppression" in syllabus
