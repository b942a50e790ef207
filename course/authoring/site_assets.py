"""The shared files of the course's website: its style sheet, the Colab badge, and MathJax.

MathJax 2 comes from the ``jupyter-server-mathjax`` package (the copy the classic Jupyter Notebook served),
so math is typeset with nothing fetched from the network; the site keeps only the parts its pages use
(TeX input, HTML-CSS output with the STIX web fonts). The badge is drawn here, so a page loads no image
from elsewhere (the badge links to Colab, it does not load from it).

Lesson: 00_welcome
"""
from __future__ import annotations

import shutil
from pathlib import Path

from ..errors import CourseError

__all__ = ["BADGE", "MATHJAX_CONFIG", "write_assets"]

BADGE = "assets/colab-badge.svg"
_MATHJAX_PARTS = ("MathJax.js", "LICENSE", "config/TeX-AMS-MML_HTMLorMML-full.js", "extensions", "jax/element",
                  "jax/input/TeX", "jax/output/HTML-CSS", "fonts/HTML-CSS")

# HTML-CSS probes for fonts with an 'about:blank' one, and the hidden MathML copy of each formula (for screen
# readers) names TeX web fonts this MathJax does not ship: local() sources keep the browser from fetching either.
MATHJAX_CONFIG = """<script type="text/x-mathjax-config">
MathJax.Hub.Config({
  tex2jax: {inlineMath: [["$", "$"], ["\\\\(", "\\\\)"]], displayMath: [["$$", "$$"], ["\\\\[", "\\\\]"]],
            processEscapes: true, processEnvironments: true},
  "HTML-CSS": {availableFonts: [], preferredFont: null, webFont: "STIX-Web", imageFont: null,
               styles: {"@font-face": {"font-family": "MathJax_Blank", src: "local('MathJax_Blank')"}}},
  NativeMML: {styles: {
    "@font-face /*1*/": {"font-family": "MathJax_Caligraphic-WEB", src: "local('MathJax_Caligraphic')"},
    "@font-face /*2*/": {"font-family": "MathJax_Caligraphic-WEB", "font-weight": "bold", src: "local('MathJax_Caligraphic')"},
    "@font-face /*3*/": {"font-family": "MathJax_AMS-WEB", src: "local('MathJax_AMS')"},
    "@font-face /*4*/": {"font-family": "MathJax_Script-WEB", src: "local('MathJax_Script')"},
    "@font-face /*5*/": {"font-family": "MathJax_Fraktur-WEB", src: "local('MathJax_Fraktur')"},
    "@font-face /*6*/": {"font-family": "MathJax_Fraktur-WEB", "font-weight": "bold", src: "local('MathJax_Fraktur')"}}},
  messageStyle: "none", showMathMenu: false
});
</script>
<script src="assets/mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full"></script>"""

_BADGE_SVG = """<svg xmlns="http://www.w3.org/2000/svg" width="117" height="20" viewBox="0 0 117 20" role="img"
 aria-label="Open in Colab"><rect width="117" height="20" rx="3" fill="#555"/><rect x="20" width="97" height="20" rx="3"
 fill="#e8710a"/><rect x="20" width="6" height="20" fill="#e8710a"/><circle cx="8" cy="10" r="4" fill="none"
 stroke="#f9ab00" stroke-width="2.4"/><circle cx="13" cy="10" r="4" fill="none" stroke="#f9ab00" stroke-width="2.4"/>
<text x="68" y="14" fill="#fff" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11"
 text-anchor="middle">Open in Colab</text></svg>
"""

_CSS = """
:root { --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --accent: #0b5cad; --code: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); font: 16px/1.55 system-ui, -apple-system, "Segoe UI", sans-serif; }
a { color: var(--accent); }
.site-header { padding: .7rem 1.2rem; border-bottom: 1px solid var(--line); background: #fafbfc; }
.site-header a { font-weight: 600; text-decoration: none; color: var(--ink); }
.site-header span { color: var(--muted); }
.layout { display: flex; align-items: flex-start; }
.site-nav { position: sticky; top: 0; flex: 0 0 15rem; padding: 1rem; font-size: .9rem; max-height: 100vh;
  overflow-y: auto; }
.site-nav ol { padding-left: 1.2rem; }
.site-nav li { margin: .3rem 0; }
.site-nav a[aria-current] { font-weight: 700; color: var(--ink); }
main { flex: 1; min-width: 0; max-width: 60rem; padding: 0 1.5rem 3rem; }
.pager { display: flex; justify-content: space-between; gap: 1rem; margin: 1rem 0; font-size: .95rem; }
.site-footer { border-top: 1px solid var(--line); padding: 1rem 1.2rem; color: var(--muted); font-size: .85rem; }
table.lessons { border-collapse: collapse; width: 100%; }
table.lessons td, table.lessons th { border-bottom: 1px solid var(--line); padding: .4rem .5rem; text-align: left;
  vertical-align: top; }
pre.command { background: var(--code); padding: .6rem .8rem; border-radius: 6px; overflow-x: auto; }
.prompt { display: none; }
.cell { margin: .6rem 0; }
.input_area, .course-solution .highlight { background: var(--code); border: 1px solid var(--line);
  border-radius: 6px; overflow-x: auto; }
.highlight pre { margin: 0; padding: .6rem .8rem; overflow-x: auto; font-size: .85rem; line-height: 1.45; }
.output_area pre { margin: .3rem 0; padding: 0 .8rem; white-space: pre-wrap; word-break: normal;
  overflow-wrap: anywhere; font-size: .85rem; }
.output_area img { max-width: 100%; height: auto; }
.output_area svg { max-width: 100%; height: auto; }
.output_subarea { overflow-x: auto; }
.output_stderr pre { background: #fff5f5; }
.text_cell_render img { max-width: 100%; }
.anchor-link { visibility: hidden; margin-left: .3rem; text-decoration: none; }
h1:hover .anchor-link, h2:hover .anchor-link, h3:hover .anchor-link { visibility: visible; }
details.course-solution { margin: .4rem 0; }
details.course-solution > summary { cursor: pointer; color: var(--accent); font-weight: 600; }
.course-player { margin: .5rem 0; padding: .6rem; border: 1px solid var(--line); border-radius: 6px; max-width: 820px; }
.course-player audio { display: block; width: 100%; margin: .3rem 0; }
.course-roll, .course-image { display: block; max-width: 100%; height: auto; }
.course-links { font-size: .9rem; margin-top: .3rem; }
.course-note, .course-static-note { color: var(--muted); font-size: .85rem; }
.course-h { display: flex; flex-wrap: wrap; gap: .5rem 1.2rem; align-items: center; }
.course-h > .course-v, .course-h > .course-player { flex: 1 1 16rem; }
.course-player audio { min-width: 14rem; }
.course-control { font-size: .9rem; }
@media (max-width: 800px) { .layout { display: block; } .site-nav { position: static; max-height: none; } }
"""


def write_assets(out: Path) -> None:
    """The site's shared files in ``out/assets``: the style sheet, the badge, and MathJax (the parts the pages use)."""
    from pygments.formatters import HtmlFormatter

    try:
        import jupyter_server_mathjax
    except ImportError:
        raise CourseError("the site needs MathJax from the jupyter-server-mathjax package: "
                          "pip install -r requirements.txt (or pip install jupyter-server-mathjax).") from None
    assets = out / "assets"
    assets.mkdir(parents=True, exist_ok=True)
    (assets / "site.css").write_text(_CSS + HtmlFormatter().get_style_defs(".highlight"), encoding="utf-8")
    (assets / "colab-badge.svg").write_text(_BADGE_SVG, encoding="utf-8")
    static = Path(jupyter_server_mathjax.__file__).parent / "static"
    for part in _MATHJAX_PARTS:
        src, dst = static / part, assets / "mathjax" / part
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("a11y"), dirs_exist_ok=True)
        else:
            shutil.copy2(src, dst)
