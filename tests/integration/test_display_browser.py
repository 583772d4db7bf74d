"""The notebook display in a real browser (Debian's chromium driven by playwright-core from npm;
scripts/deps.sh installs both): a 60-row dataset list pages, searches and copies ids, and payloads
in a dataset's name, id and description never run.
"""

import json
import os
import pathlib
import shutil
import subprocess

import pytest

from datasite.datasets import Dataset, DatasetList

CHROMIUM = "/usr/bin/chromium"


def _playwright_dir():
    if shutil.which("npm") is None:
        return None
    root = subprocess.run(["npm", "root", "-g"], capture_output=True, text=True).stdout.strip()
    path = pathlib.Path(root) / "playwright-core"
    return path if path.is_dir() else None


PLAYWRIGHT = _playwright_dir()
pytestmark = pytest.mark.skipif(
    not os.access(CHROMIUM, os.X_OK) or PLAYWRIGHT is None,
    reason="needs chromium and playwright-core (scripts/deps.sh installs them)",
)

XSS_NAME = '<img src=x onerror="window.__xss=(window.__xss||[]).concat(\'name\')">'
XSS_ID = '"><script>window.__xss=(window.__xss||[]).concat("id")</script>'
XSS_DESCRIPTION = "\n\n".join(
    [
        "# About <script>window.__xss=(window.__xss||[]).concat('h')</script>",
        "<img src=x onerror=\"window.__xss=(window.__xss||[]).concat('img')\">",
        "[click me](javascript:window.__xss=(window.__xss||[]).concat('link'))",
        '[quoted](http://example.org/"onmouseover="window.__xss=1)',
        "**bold** and [a real link](https://example.org/)",
    ]
)

SCRIPT = r"""
const { chromium } = require(process.env.PLAYWRIGHT);
(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM, args: ["--no-sandbox"] });
  const out = {};
  try {
    const page = await browser.newPage();
    const dialogs = [];
    page.on("dialog", d => { dialogs.push(d.message()); d.dismiss(); });
    // Records what the copy buttons hand to the clipboard.
    await page.addInitScript(() => {
      window.__copied = [];
      Object.defineProperty(navigator, "clipboard", { value: {
        writeText: t => { window.__copied.push(t); return Promise.resolve(); } } });
    });
    await page.goto("file://" + process.env.PAGE);
    const list = page.locator(".ds-list").first();
    const visible = () => list.locator("tbody tr:visible td:first-child").allTextContents();
    out.first_page = await visible();
    out.count = await list.locator(".ds-count").textContent();
    out.page_label = await list.locator(".ds-page").textContent();
    await list.locator(".ds-next").click();
    out.second_page = await visible();
    out.page_label_2 = await list.locator(".ds-page").textContent();
    await list.locator(".ds-search").fill("dataset-4");
    out.search = await visible();
    out.search_count = await list.locator(".ds-count").textContent();
    out.prev_disabled = await list.locator(".ds-prev").isDisabled();
    await list.locator(".ds-search").fill("copy");  // the buttons' own text is not searched
    out.search_copy = await visible();
    await list.locator(".ds-search").fill("onerror");
    out.search_hostile = await visible();
    const button = list.locator("tbody tr:visible .ds-copy").first();
    await button.click();
    await page.waitForFunction(() => window.__copied.length > 0);
    out.button_after = await button.textContent();
    await list.locator(".ds-search").fill("");
    await list.locator("tbody tr:visible .ds-copy").first().click();
    await page.waitForFunction(() => window.__copied.length > 1);
    out.copied = await page.evaluate(() => window.__copied);
    // Hover and click everything a payload might have hooked.
    for (const el of await page.locator(".datasite-markdown *").all()) {
      await el.hover({ force: true }).catch(() => {});
    }
    await page.locator(".datasite-markdown").getByText("click me").click().catch(() => {});
    out.links = await page.locator(".datasite-markdown a").evaluateAll(
      as => as.map(a => a.getAttribute("href")));
    out.markdown_headings = await page.locator(".datasite-markdown h4").allTextContents();
    out.images = await page.locator("img").count();
    out.xss = await page.evaluate(() => window.__xss || null);
    out.dialogs = dialogs;
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(out));
})().catch(e => { console.error(e); process.exit(1); });
"""


def _page(tmp_path):
    datasets = []
    for i in range(60):
        datasets.append(
            Dataset._from_server(
                {
                    "id": XSS_ID if i == 0 else "id-{:02d}".format(i),
                    "name": XSS_NAME if i == 59 else "dataset-{:02d}".format(i),
                    "summary": "summary {}".format(i),
                    "description": "",
                    "assets": [],
                },
                None,
            )
        )
    hostile = Dataset._from_server(
        {"id": "d-x", "name": XSS_NAME, "summary": "s", "description": XSS_DESCRIPTION,
         "assets": []},
        None,
    )  # fmt: skip
    body = DatasetList(datasets)._repr_html_() + hostile._repr_html_()
    page = tmp_path / "display.html"
    page.write_text("<!doctype html><meta charset=utf-8><body>" + body + "</body>")
    return page


def test_list_pages_searches_copies_and_runs_no_payload(tmp_path):
    page = _page(tmp_path)
    script = tmp_path / "check.js"
    script.write_text(SCRIPT)
    env = dict(os.environ, PLAYWRIGHT=str(PLAYWRIGHT), CHROMIUM=CHROMIUM, PAGE=str(page))
    proc = subprocess.run(
        ["node", str(script)], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])

    assert out["first_page"] == ["dataset-{:02d}".format(i) for i in range(10)]
    assert out["count"] == "60 of 60" and out["page_label"] == "page 1 of 6"
    assert out["second_page"] == ["dataset-{:02d}".format(i) for i in range(10, 20)]
    assert out["page_label_2"] == "page 2 of 6"
    assert out["search"] == ["dataset-{:02d}".format(i) for i in range(40, 50)]
    assert out["search_count"] == "10 of 60" and out["prev_disabled"] is True
    assert out["search_copy"] == []
    assert out["search_hostile"] == [XSS_NAME]  # shown as text, found as text
    assert out["button_after"] == "copied"
    assert out["copied"] == ["id-59", XSS_ID]  # exactly the ids, quotes and all

    assert out["links"] == ["https://example.org/"]
    assert out["markdown_headings"] == [
        "About <script>window.__xss=(window.__xss||[]).concat('h')</script>"
    ]
    assert out["images"] == 0
    assert out["xss"] is None and out["dialogs"] == []
