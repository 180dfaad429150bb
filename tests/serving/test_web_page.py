"""The draw-a-digit page in headless Chromium, both ways it answers:
- on the server: the page sends the canvas as PNG to predict_pictures, and the model's answer, the
  28x28 image it made of the drawing and the heat map of why (explain_images on that 28x28) appear;
- in the page: with the server's predict endpoint blocked, ONNX Runtime Web runs the version's
  model.onnx on the page's own 28x28 of the drawing, and on MNIST test images its classes are the
  SavedModel's."""

import json

import numpy as np
import pytest

from serving.tools import headless
from tests.serving.conftest import MODEL_NAME, publish, start_server

AGREEMENT_IMAGES = 200


@pytest.fixture(scope="module")
def page_server(tmp_path_factory, exported_model):
    """serving.server over a version holding the SavedModel and its model.onnx, as a release writes it."""
    import tensorflow as tf

    from components.release import onnx_model
    from modules import push_layout

    scratch = tmp_path_factory.mktemp("onnx")
    onnx_path = str(scratch / push_layout.ONNX_FILE)
    with open(onnx_path, "wb") as f:
        f.write(onnx_model.convert(tf.saved_model.load(exported_model)))
    base = str(tmp_path_factory.mktemp("push_page") / MODEL_NAME)
    publish(exported_model, base, 1, {push_layout.ONNX_FILE: onnx_path})
    srv = start_server("dev", base)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def browser():
    drv = headless.chromium()
    yield drv
    drv.quit()


def _draw(browser, strokes):
    from selenium.webdriver.common.action_chains import ActionChains

    pad = browser.find_element("id", "pad")
    for stroke in strokes:
        actions = ActionChains(browser, duration=10)
        (x0, y0), rest = stroke[0], stroke[1:]
        # offsets are from the canvas centre (280x280)
        actions.move_to_element_with_offset(pad, x0 - 140, y0 - 140).click_and_hold()
        for x, y in rest:
            actions.move_to_element_with_offset(pad, x - 140, y - 140)
        actions.release().perform()


def _prediction(browser):
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 30).until(lambda b: b.find_element("id", "status").text in ("done", "failed"))
    error = browser.find_element("id", "error").text
    assert not error, error
    probabilities = [float(td.text) for td in browser.find_elements("css selector", "#probabilities td.p")]
    return browser.find_element("id", "prediction").text, probabilities


def test_drawing_a_one_on_the_server_shows_the_class_the_28x28_and_why(browser, page_server):
    browser.get(page_server.rest_url + f"/?model={MODEL_NAME}&run=server")
    _draw(browser, [[(140, 40 + 20 * i) for i in range(11)]])  # a vertical stroke: a "1"
    predicted, probabilities = _prediction(browser)
    assert len(probabilities) == 10 and sum(probabilities) == pytest.approx(1.0, abs=1e-3)
    assert predicted == str(max(range(10), key=probabilities.__getitem__))
    assert predicted == "1"
    seen = np.array(json.loads(browser.find_element("id", "seen").get_attribute("data-pixels")), np.uint8)
    rows, _ = np.nonzero(seen > 128)
    assert seen.shape == (28, 28) and rows.max() - rows.min() + 1 >= 18  # the stroke fitted into MNIST's 20x20
    ys, xs = np.nonzero(seen)
    weights = seen[ys, xs].astype(float)
    assert abs(np.average(ys, weights=weights) - 14) <= 1 and abs(np.average(xs, weights=weights) - 14) <= 1
    # The heat map explains that 28x28: its positive attribution lies on the stroke.
    why = np.array(json.loads(browser.find_element("id", "why").get_attribute("data-attributions")), np.float32)
    positive = np.clip(why, 0, None)
    assert why.shape == (28, 28) and positive.sum() > 0
    assert positive[seen > 0].sum() / positive.sum() > 0.8
    # ... and the page draws it: red where a pixel raised the answer (4x4 canvas pixels per pixel).
    drawn = browser.execute_script(
        "const c = document.getElementById('why');"
        "return Array.from(c.getContext('2d').getImageData(0, 0, 112, 112).data);"
    )
    rgb = np.array(drawn, np.int32).reshape(112, 112, 4)[2::4, 2::4, :3]
    reddest = np.unravel_index(np.argmax(why), why.shape)
    assert rgb[reddest][0] == 255 and rgb[reddest][0] - rgb[reddest][2] > 100, rgb[reddest]  # over the dimmed ink


def test_clear_then_a_zero(browser, page_server):
    browser.get(page_server.rest_url + "/")
    assert headless.page_ready(browser) == headless.IN_PAGE
    browser.find_element("id", "clear").click()
    import math

    ring = [(140 + 60 * math.sin(t / 12 * 2 * math.pi), 140 - 90 * math.cos(t / 12 * 2 * math.pi)) for t in range(13)]
    _draw(browser, [[(int(x), int(y)) for x, y in ring]])
    predicted, probabilities = _prediction(browser)
    assert predicted == "0", probabilities


@pytest.fixture
def predict_blocked(browser):
    """The server's predict endpoint unreachable from the page (Chromium refuses the requests)."""
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*:predict*"]})
    yield
    browser.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})


def test_without_the_predict_endpoint_a_drawn_digit_is_classified_in_the_page(browser, page_server, predict_blocked):
    browser.get(page_server.rest_url + "/")
    assert headless.page_ready(browser) == headless.IN_PAGE
    _draw(browser, [[(140, 40 + 20 * i) for i in range(11)]])
    predicted, probabilities = _prediction(browser)
    assert predicted == "1" and sum(probabilities) == pytest.approx(1.0, abs=1e-3)
    # The page made MNIST's 28x28 itself: the stroke fills the 20x20 box, centred by its mass.
    seen = np.array(json.loads(browser.find_element("id", "seen").get_attribute("data-pixels")), np.uint8)
    rows, _ = np.nonzero(seen > 128)
    assert rows.max() - rows.min() + 1 >= 18
    ys, xs = np.nonzero(seen)
    weights = seen[ys, xs].astype(float)
    assert abs(np.average(ys, weights=weights) - 13.5) <= 1 and abs(np.average(xs, weights=weights) - 13.5) <= 1
    # Only the why needed the server: it is missing, said in plain words.
    assert browser.find_element("id", "why-status").text.startswith("no explanation:")


def test_the_page_gives_the_savedmodel_s_classes_on_mnist_test_images(
    browser, page_server, predict_blocked, exported_model, test_images_labels
):
    import tensorflow as tf

    from modules import signatures

    images = test_images_labels[0][:AGREEMENT_IMAGES]
    browser.get(page_server.rest_url + "/")
    assert headless.page_ready(browser) == headless.IN_PAGE
    # The page's own code path (classifyPixels), one digit at a time as a drawing is.
    classes, ms_per_digit = headless.classify_in_page(browser, images)
    signature = tf.saved_model.load(exported_model).signatures[signatures.IMAGES_SIGNATURE]
    expected = signature(images=tf.constant(images))[signatures.CLASSES_OUTPUT].numpy()
    agreement = float(np.mean(classes == expected))
    print(f"the page: {agreement:.1%} of {len(images)} classes agree; {ms_per_digit:.2f} ms a digit")
    assert agreement >= 0.995
