"""The draw-a-digit page in headless Chromium (Selenium, with Debian's chromium and chromedriver):
start the browser, wait for the page's in-browser model, and classify images through the page's own
code path (its classifyPixels). Used by the page's tests and benchmarks/formats.py."""

import shutil
from typing import Tuple

import numpy as np

IN_PAGE = "this page (ONNX Runtime Web)"  # what the page's "answers come from" says when the model loaded
CHUNK = 500  # images sent to the page per script call


def chromium():
    """A headless Chromium WebDriver; the caller quits it."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (binary and driver):
        raise RuntimeError("chromium and chromedriver are missing: ./bootstrap.sh --browser installs them")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1000,800",
    ):
        options.add_argument(flag)
    # An explicit chromedriver: Selenium must not try to download one.
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


def page_ready(driver, timeout: float = 60) -> str:
    """Waits until the page has tried to load its in-browser model; returns where answers come from."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(lambda d: d.find_element("id", "where").get_attribute("data-ready") == "1")
    return driver.find_element("id", "where").text


_CLASSIFY = """
const [images, batch, done] = arguments;
(async () => {
  const classes = [];
  const started = performance.now();
  for (let i = 0; i < images.length; i += batch) {
    const rows = images.slice(i, i + batch);
    const answer = await classifyPixels(Uint8Array.from(rows.flat()), rows.length);
    classes.push(...answer.classes);
  }
  done({ classes, ms: performance.now() - started });
})().catch(err => done({ error: String(err) }));
"""


def classify_in_page(driver, images: np.ndarray, batch: int = 1) -> Tuple[np.ndarray, float]:
    """(classes, milliseconds per call of `batch` images) for uint8 images [n, 28, 28], run by the
    page's classifyPixels in calls of `batch` images. The page must be loaded and ready."""
    driver.set_script_timeout(600)
    classes, ms, calls = [], 0.0, 0
    for start in range(0, len(images), CHUNK):
        chunk = images[start : start + CHUNK].reshape(-1, images.shape[1] * images.shape[2])
        result = driver.execute_async_script(_CLASSIFY, chunk.tolist(), batch)
        if "error" in result:
            raise RuntimeError(f"the page could not classify: {result['error']}")
        classes += result["classes"]
        ms += result["ms"]
        calls += -(-len(chunk) // batch)
    return np.array(classes), ms / calls
