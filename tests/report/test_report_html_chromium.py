"""report.html in headless Chromium: no script errors, and its plots drew (screenshot)."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.report.build import rebuild
from report_pngread import count_color, read_png

FIX = Path(__file__).parents[1] / "metrics" / "fixtures" / "failover_genesys"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--hide-scrollbars"]

pytestmark = pytest.mark.chromium


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    for f in FIX.iterdir():
        shutil.copy(f, run_dir)
    rebuild(run_dir)
    return run_dir / "report.html"


def chromium(chromium_bin, tmp_path, *args):
    cmd = [chromium_bin, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_page_scripts_run_and_plots_have_ink(chromium_bin, report, tmp_path):
    dom = chromium(chromium_bin, tmp_path, "--dump-dom", report.as_uri())
    status = re.search(r'id="render-status" data-ok="(\w+)"[^>]*>([^<]*)<', dom)
    assert status, "render status element missing"
    assert status.group(1) == "yes", status.group(2)
    errors = re.search(r'id="render-errors"[^>]*>([^<]*)<', dom)
    assert errors and errors.group(1) == "", errors.group(1)
    assert "The contact centre survived" in dom


# colours drawn only by the plots: answered (200) and 503 lines, the analytics
# MTTR bar, the p99 setup bars, the injection marker
PLOT_INK = [("200 line", (0x2C, 0xA0, 0x2C), 300), ("503 line", (0xE3, 0x77, 0xC2), 100),
            ("analytics bar", (0x94, 0x67, 0xBD), 2000), ("p99 bars", (0x08, 0x51, 0x9C), 100),
            ("injection marker", (0x1F, 0x77, 0xB4), 50)]


def screenshot(chromium_bin, report, tmp_path, *extra):
    shot = tmp_path / "shot.png"
    chromium(chromium_bin, tmp_path, *extra, f"--screenshot={shot}", "--window-size=1100,1900",
             report.as_uri())
    return read_png(shot)


def test_screenshot_shows_the_plotted_series(chromium_bin, report, tmp_path):
    png = screenshot(chromium_bin, report, tmp_path)
    for name, rgb, least in PLOT_INK:
        assert count_color(png, rgb, tolerance=8) >= least, name


def test_screenshot_check_sees_missing_plots(chromium_bin, report, tmp_path):
    # the same page with the plot drawing left out: the colour check must notice
    page = report.read_text()
    assert "drawOutcomes(); drawMttr(); drawSetup();" in page
    blank = tmp_path / "blank.html"
    blank.write_text(page.replace("drawOutcomes(); drawMttr(); drawSetup();", ""))
    png = screenshot(chromium_bin, blank, tmp_path)
    for name, rgb, least in PLOT_INK:
        assert count_color(png, rgb, tolerance=8) < least, name
