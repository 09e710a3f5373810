"""The Train page in Chromium: start a small custom_cnn job through the UI and watch it live."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from facecore.recognize.runs import list_runs
from facecore.train import jobs
from tests.helpers import ARTIFACTS

pytestmark = pytest.mark.browser
PROGRESS_TEXTS = "[...document.querySelectorAll('[data-testid=stProgress]')].map(e => e.innerText)"


def open_train(page, app_url: str) -> None:
    """The app's home, then Train in the sidebar (as a user gets there)."""
    page.goto(app_url)
    page.get_by_test_id("stSidebarNav").get_by_text("Train", exact=True).click()
    page.get_by_role("heading", name="Train", exact=True).wait_for(timeout=60_000)


def shot(page, name: str) -> None:
    """A screenshot of the whole page (Streamlit scrolls inside the app, so grow the viewport)."""
    height = page.evaluate("document.querySelector('[data-testid=stMain]').scrollHeight")
    page.set_viewport_size({"width": 1280, "height": max(900, min(int(height) + 40, 6000))})
    page.screenshot(path=str(ARTIFACTS / name))
    page.set_viewport_size({"width": 1280, "height": 900})


@pytest.mark.timeout(300)
def test_train_custom_cnn_from_the_browser(small_dataset: str, app_url: str, page) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        train_through_the_ui(app_url, page)
    except Exception:
        shot(page, "train-failure.png")
        raise


def wait_until(page, predicate, timeout_s: float, what: str):
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if value := predicate():
            return value
        page.wait_for_timeout(300)
    raise AssertionError(f"timed out waiting for {what}")


def train_through_the_ui(app_url: str, page) -> None:
    open_train(page, app_url)
    page.get_by_role("tab", name="custom_cnn").click()
    panel = page.get_by_role("tabpanel", name="custom_cnn")
    # 8 short epochs: the job runs for several of the page's 2 s refreshes, so it is seen running
    for label, value in (("Epochs", "8"), ("Batch size", "8")):
        field = panel.get_by_label(label, exact=True)
        field.fill(value)
        field.press("Enter")
        page.wait_for_timeout(800)
    shot(page, "train-form.png")
    panel.get_by_role("button", name="Train custom_cnn").click()

    (job,) = wait_until(page, jobs.list_jobs, 30, "the job the button starts")
    page.get_by_text(job.id).first.wait_for(timeout=30_000)
    page.get_by_test_id("stProgress").first.wait_for(timeout=150_000)  # slow on a busy 2-core runner
    # the button was at the bottom of the form; the forms fold away so the progress is in view
    expect(page.get_by_test_id("stProgress").first).to_be_in_viewport(timeout=5_000)
    assert page.get_by_text("New training: queue another job").count() == 1
    assert job.configs[0]["epochs"] == 8 and job.configs[0]["batch_size"] == 8
    seen: list[str] = []
    taken: set[str] = set()
    chart = page.get_by_test_id("stPlotlyChart")
    end = time.monotonic() + 120
    while time.monotonic() < end and not chart.count():
        for text in page.evaluate(PROGRESS_TEXTS):
            if text not in seen:
                seen.append(text)
                if text.startswith("custom_cnn") and "batch" in text and "progress" not in taken:
                    shot(page, "train-progress.png")
                    taken.add("progress")
        page.wait_for_timeout(250)
    assert chart.count(), f"no live chart; progress seen: {seen}"
    running = [t for t in seen if not t.startswith("Starting the training process")]
    assert running and all(t.startswith("custom_cnn (model 1 of 1)") for t in running), seen
    assert any("epoch" in t and "/8" in t for t in running), seen
    shot(page, "train-live.png")

    second = page.context.browser.new_page()  # the job lives on disk: another tab shows the same job
    open_train(second, app_url)
    second.get_by_text(job.id).first.wait_for(timeout=60_000)
    second.close()

    page.get_by_text("Done: finished 1 run(s)").wait_for(timeout=120_000)
    chart.first.wait_for(timeout=30_000)
    page.get_by_test_id("stDataFrame").wait_for(timeout=30_000)  # the history, refreshed at the end
    (run,) = list_runs()
    assert run.state == "finished" and run.epochs_run == 8
    page.wait_for_timeout(1000)
    shot(page, "train-done.png")
