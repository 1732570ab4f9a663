"""report.html opened in a real headless Chromium: every table renders with rows, every figure decodes.

A copy of the report gets a small script that, once the page has loaded, writes what the browser made of
it into `<pre id="browser-check">`; Chromium's `--dump-dom` prints the page after that. Needs Debian's
`chromium` (or chromium-browser / google-chrome on PATH); skipped without one."""

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from rich.console import Console

from conftest import copy_tiny_run
from test_report_robustness import write_robustness_run
from xstilts.report import report_run

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
CHECK = """<script>
window.addEventListener("load", () => {
  const tables = [...document.querySelectorAll("table")];
  const images = [...document.images];
  const summary = {
    tables: tables.length,
    tables_with_rows: tables.filter((t) => t.rows.length > 1 && t.getBoundingClientRect().height > 0).length,
    images: images.length,
    images_decoded: images.filter((i) => i.complete && i.naturalWidth > 0 && i.naturalHeight > 0).length,
  };
  const pre = document.createElement("pre");
  pre.id = "browser-check";
  pre.textContent = JSON.stringify(summary);
  document.body.appendChild(pre);
});
</script>"""


def browser() -> str:
    found = next((path for path in map(shutil.which, BROWSERS) if path), None)
    if found is None:
        pytest.skip(
            "no Chromium found (chromium, chromium-browser or google-chrome): apt-get install chromium"
        )
    return found


def rendered(page: str, tmp_path: Path) -> dict:
    """What headless Chromium counts in `page`: tables, those with rows, images, those decoded."""
    assert page.count("</body>") == 1
    path = tmp_path / "checked.html"
    path.write_text(page.replace("</body>", CHECK + "</body>"), encoding="utf-8")
    command = [
        browser(),
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--virtual-time-budget=10000",  # lets the load event and the script run before the DOM is dumped
        "--dump-dom",
        path.resolve().as_uri(),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    found = re.search(r'<pre id="browser-check">(.*?)</pre>', result.stdout, re.S)
    assert found, f"the check script did not run: {result.stdout[-500:]!r} {result.stderr[-1000:]!r}"
    return json.loads(html.unescape(found[1]))


def assert_all_rendered(page: str, tmp_path: Path) -> dict:
    summary = rendered(page, tmp_path)
    assert summary["tables"] == page.count("<table") and summary["tables_with_rows"] == summary["tables"]
    assert summary["images"] == page.count("<img ") and summary["images_decoded"] == summary["images"]
    return summary


def test_robustness_report_renders_in_chromium(tmp_path):
    run_dir = write_robustness_run(tmp_path / "run")
    page = report_run(run_dir, Console(record=True, width=100)).read_text(encoding="utf-8")
    summary = assert_all_rendered(page, tmp_path)
    # summary + per-language zero-shot tables, robustness table, one example, earlier settings
    assert summary["tables"] == 5 and summary["images"] == 3  # heatmap, bars, stability curves


def test_normal_report_renders_in_chromium(finished_tiny_run, tmp_path):
    cfg, _ = copy_tiny_run(finished_tiny_run, tmp_path)
    page = report_run(cfg.run_dir, Console(record=True, width=100)).read_text(encoding="utf-8")
    summary = assert_all_rendered(page, tmp_path)
    assert summary["tables"] == 4 and summary["images"] == 4  # summary + a table and a chart per target
    assert "Robustness" not in page


def test_the_check_finds_a_broken_image_and_an_empty_table(tmp_path):
    run_dir = write_robustness_run(tmp_path / "run")
    page = report_run(run_dir, Console(record=True, width=100)).read_text(encoding="utf-8")
    payload = re.search(r'src="data:image/png;base64,([^"]{100})', page)[1]
    broken = page.replace(payload, "A" * len(payload), 1)  # the PNG's header is gone: it cannot decode
    broken = broken.replace("</body>", "<table><tr><th>header only</th></tr></table></body>")
    summary = rendered(broken, tmp_path)
    assert summary["images"] == 3 and summary["images_decoded"] == 2
    assert summary["tables"] == 6 and summary["tables_with_rows"] == 5
    with pytest.raises(AssertionError):
        assert_all_rendered(broken, tmp_path)
