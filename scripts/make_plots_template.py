"""Write the page that `dvc plots show` and `dvc plots diff` fill, with Vega, Vega-Lite and
Vega-Embed inline instead of loaded from a CDN, so their charts draw with no network.

    python -m scripts.make_plots_template [--out .dvc/plots_offline.html]

The libraries come from the pinned vl-convert-python: its newest Vega-Lite of the major version
that DVC's chart templates declare. `.dvc/config` names the page (plots.html_template); a test
checks that the committed page is what this script writes, so rerun it when a pin changes.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import vl_convert
from dvc_render.html import HTML, PAGE_HTML
from dvc_render.vega_templates import TEMPLATES

from imgclf.atomic import atomic_open

DEFAULT_OUT = Path(".dvc/plots_offline.html")


def vega_lite_version() -> str:
    """The newest Vega-Lite in vl-convert of the major version of DVC's templates' $schema."""
    majors = {
        re.search(r"/vega-lite/v(\d+)", template.DEFAULT_CONTENT["$schema"])[1]
        for template in TEMPLATES
    }
    if len(majors) != 1:
        raise SystemExit(f"DVC's templates declare several Vega-Lite versions: {sorted(majors)}")
    (major,) = majors
    versions = [v for v in vl_convert.get_vegalite_versions() if v.split(".")[0] == major]
    if not versions:
        raise SystemExit(f"vl-convert-python ships no Vega-Lite {major}")
    return max(versions, key=lambda version: tuple(map(int, version.split("."))))


def page() -> str:
    """DVC's own page, the libraries inline in place of its CDN script tags."""
    bundle = vl_convert.javascript_bundle(vl_version=vega_lite_version())
    placeholders = [HTML.SCRIPTS_PLACEHOLDER, HTML.PLOTS_PLACEHOLDER, HTML.REFRESH_PLACEHOLDER]
    # DVC replaces each {placeholder} anywhere in the page, and a browser ends the script at
    # the first "</script": neither may appear in the libraries.
    if "</script" in bundle.lower() or any(f"{{{name}}}" in bundle for name in placeholders):
        raise SystemExit("the JavaScript bundle holds text DVC or a browser would act on")
    html = PAGE_HTML.replace("<head>", '<head>\n    <meta charset="utf-8">', 1)
    return html.replace(f"{{{HTML.SCRIPTS_PLACEHOLDER}}}", f"<script>{bundle}</script>") + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    out = parser.parse_args().out
    with atomic_open(out, encoding="utf-8") as file:
        file.write(page())
    print(f"{out}: {out.stat().st_size} bytes")


if __name__ == "__main__":
    main()
