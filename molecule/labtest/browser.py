"""A person's page: MLflow's UI in headless chromium through a lab's proxy."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from labtest.front_door import ERROR_LOG
from labtest.lab import PROJECT

# Screenshots and timings of the UI tests (kept after the run).
ARTIFACTS = Path(os.environ.get("MLFLOW_TEST_ARTIFACTS", PROJECT / "test-artifacts"))


def page_state(driver, screenshot: Path, error: str) -> str:
    """What a browser shows and fetched, for a failure message; keeps a screenshot."""
    from selenium.common.exceptions import WebDriverException

    try:
        driver.save_screenshot(str(screenshot))
        fetched = driver.execute_script(
            "return performance.getEntriesByType('resource')"
            ".map(e => [e.name.split('?')[0].slice(-60), e.responseStatus, Math.round(e.duration)])"
        )
        body = driver.find_element("tag name", "body").text[:300]
    except WebDriverException as broken:  # the browser itself is gone
        return f"{error}; no page state ({(broken.msg or type(broken).__name__).splitlines()[0]})"
    failing = [entry for entry in fetched if not 200 <= (entry[1] or 0) < 400]
    slowest = sorted(fetched, key=lambda entry: -entry[2])[:5]
    return (
        f"{error}; {len(fetched)} requests, not 2xx/3xx: {failing[:10]}, slowest (ms): {slowest}; "
        f"screenshot {screenshot}; page: {body!r}"
    )


def see_run_in_the_ui(
    proxy_ip: str,
    name: str,
    user: str,
    password: str,
    experiment_id: str,
    run_id: str,
    label: str,
    loads: int = 1,
    proxy=None,
) -> dict:
    """Open the experiment's runs page as a person does, in headless chromium.

    Logs in once through the browser's HTTP authentication (what the password
    dialog fills: the browser then sends the credentials with every request
    of the page), opens https://NAME/#/experiments/ID/runs and waits until the
    run's link is on the page; `loads` times in all (the browser's reload).
    Keeps a screenshot and the first load's timing in
    ARTIFACTS/LABEL@DISTRO.{png,json}; returns the timing. On a failure,
    the end of the error log of `proxy` (the front door's host) is told too.
    """
    from urllib.parse import quote

    label = f"{label}@{os.environ.get('MOLECULE_DISTRO', 'debian12')}"

    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def listed(driver) -> list:
        return driver.find_elements(By.CSS_SELECTOR, f'a[href*="{run_id}"]')

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in (
        "--headless=new",
        "--no-sandbox",  # as root in CI
        "--disable-dev-shm-usage",
        "--window-size=1600,1000",
        # The lab's name is in no DNS; its certificate is checked by the
        # verification (mlflow_verify), not by this test.
        f"--host-resolver-rules=MAP {name} {proxy_ip}",
    ):
        options.add_argument(argument)
    options.accept_insecure_certs = True
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    phase, start = "log-in", time.monotonic()
    try:
        driver.set_page_load_timeout(90)
        # The log-in: credentials answer the 401 once, then sit in the
        # browser's authentication cache for the whole site.
        driver.get(f"https://{quote(user, safe='')}:{quote(password, safe='')}@{name}/version")
        assert driver.find_element(By.TAG_NAME, "body").text.strip(), "the log-in page stayed empty"
        phase, start = "runs page", time.monotonic()
        driver.get(f"https://{name}/#/experiments/{experiment_id}/runs")
        phase = f"run {run_id} listed"
        WebDriverWait(driver, 90).until(listed)
        timing = {
            "seconds_to_run_listed": round(time.monotonic() - start, 2),
            "requests": driver.execute_script("return performance.getEntriesByType('resource').length"),
            "title": driver.title,
        }
        for load in range(2, loads + 1):
            phase, start = f"reload {load} of {loads}", time.monotonic()
            driver.refresh()
            WebDriverWait(driver, 90).until(listed)
        driver.save_screenshot(str(ARTIFACTS / f"{label}.png"))
        (ARTIFACTS / f"{label}.json").write_text(json.dumps(timing, indent=2) + "\n")
        print(f"UI {label}: {timing}")
        return timing
    except WebDriverException as error:
        # Whatever the browser stopped on, say where, after how long, and what
        # the page showed and fetched (a person's report, not a stack trace).
        reason = (error.msg or type(error).__name__).splitlines()[0]
        proxy_log = proxy.run(f"tail -n 20 {ERROR_LOG}").stdout if proxy else ""
        raise AssertionError(
            f"{label}: {phase} failed after {time.monotonic() - start:.1f} s: "
            + page_state(driver, ARTIFACTS / f"{label}-failed.png", reason)
            + (f"; the proxy's error log ends: {proxy_log}" if proxy_log else "")
        ) from None
    finally:
        driver.quit()
