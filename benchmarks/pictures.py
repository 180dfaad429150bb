"""Pictures as people send them: digits the model never trained on, printed onto paper-like pages
(grey paper, gradients, shadows, noise, JPEG, grey and coloured ink, pens, slant, off-centre and
small digits, page sizes, both polarities), read through the model's picture signature.

    python benchmarks/pictures.py                        # newest serving_model version, all digits
    python benchmarks/pictures.py --model-dir D --rows 500 --write-pictures DIR

The digits: MNIST's test split and scikit-learn's bundled UCI digits (other writers). For every
family and strength: accuracy through `predict_pictures`, beside the same digits' accuracy as
clean 28x28 arrays through `predict_images`. Blank and noise-only pages must come back "no digit".
Writes benchmarks/results/pictures.json.
"""

import argparse
import io
import json
import sys
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

import numpy as np
from PIL import Image, ImageFilter

from benchmarks import output

TARGET_DROP = 0.005  # at ordinary strengths, at most this far below the clean arrays' accuracy
NO_DIGIT_TARGET = 0.99


@dataclass(frozen=True)
class Page:
    """How one digit is put on paper. Levels are grey values (0 black, 255 white)."""

    side: int = 200  # the page's pixels (square)
    paper: float = 235.0
    ink: tuple = (20, 20, 20)  # RGB
    digit: float = 0.6  # the longer side of the digit's ink as a share of the page's side
    offset: tuple = (0.0, 0.0)  # the digit's centre moved by this share of the page (down, right)
    pen: int = 0  # the strokes wider (> 0) or narrower (< 0) by this many of MNIST's 28 pixels
    slant: float = 0.0  # shear, as the tangent of the angle
    gradient: float = 0.0  # the paper darker by this much from one corner to the other
    shadow: float = 0.0  # a soft shadow darkening part of the page by this much
    noise: float = 0.0  # sigma of Gaussian noise, in grey levels
    jpeg: Optional[int] = None  # quality; None: PNG


# family -> [(strength label, page, ordinary?)]; ordinary strengths are what phones and scanners
# give every day, the others are where to look for the edge.
FAMILIES: Dict[str, List[tuple]] = {
    "paper grey": [(str(p), Page(paper=p), p >= 170) for p in (255, 210, 180, 150)],
    "gradient": [(str(g), Page(gradient=g), g <= 60) for g in (30, 60, 100)],
    "shadow": [(str(s), Page(shadow=s), s <= 60) for s in (40, 60, 100)],
    "noise": [(str(s), Page(noise=s), s <= 10) for s in (5, 10, 20)],
    "jpeg quality": [(str(q), Page(jpeg=q), q >= 50) for q in (90, 50, 20)],
    "ink grey": [(str(v), Page(ink=(v, v, v)), v <= 100) for v in (60, 100, 140)],
    "ink colour": [(name, Page(ink=rgb), True) for name, rgb in (("blue", (20, 40, 170)), ("red", (190, 20, 20)))],
    "pen": [(f"{p:+d}", Page(pen=p), abs(p) <= 1) for p in (1, -1, 2)],
    "slant": [(str(s), Page(slant=s), s <= 0.2) for s in (0.1, 0.2, 0.35)],
    "off-centre": [(str(o), Page(offset=(o, -o)), o <= 0.15) for o in (0.1, 0.15, 0.25)],
    "small": [(str(d), Page(digit=d), d >= 0.2) for d in (0.3, 0.2, 0.12)],
    "page side": [(str(s), Page(side=s, jpeg=90 if s > 500 else None), True) for s in (64, 500, 2000)],
    "light on dark": [
        (name, Page(paper=p, ink=(v, v, v)), True) for name, p, v in (("chalk", 40, 230), ("white", 0, 255))
    ],
}


def _ink_alpha(digit: np.ndarray, page: Page, longer_side: int) -> np.ndarray:
    """A digit image (ink bright, any size) -> the ink's coverage [height, width] in [0, 1] at the
    page's scale, its pen and slant applied. The scale is set by the ink's own box, so its longer
    side is longer_side pixels whatever margin the source image has (MNIST's 28x28 holds a 20x20
    box; a UCI scan's ink fills its 32x32)."""
    ys, xs = np.nonzero(digit > 0)
    if len(ys):
        digit = digit[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    scale = longer_side / max(digit.shape)  # page pixels per source pixel
    img = Image.fromarray(digit.astype(np.uint8))
    width, height = max(1, round(img.width * scale)), max(1, round(img.height * scale))
    img = img.resize((width, height), Image.BICUBIC)
    radius = round(abs(page.pen) * longer_side / 20 / 2)  # pen counts MNIST pixels; half on each side
    if radius:
        img = img.filter((ImageFilter.MaxFilter if page.pen > 0 else ImageFilter.MinFilter)(2 * radius + 1))
    if page.slant:
        extra = int(abs(page.slant) * height)
        img = img.transform(
            (width + extra, height),
            Image.AFFINE,
            (1, page.slant, -extra if page.slant > 0 else 0, 0, 1, 0),
            Image.BICUBIC,
        )
    return np.asarray(img, np.float32).clip(0, 255) / 255.0


def render(digit: np.ndarray, page: Page, rng: np.random.Generator) -> bytes:
    """One digit (uint8, ink bright, e.g. a 28x28 MNIST image) on a page, encoded as PNG or JPEG."""
    side = page.side
    ys, xs = np.mgrid[0:side, 0:side].astype(np.float32) / side
    paper = np.full((side, side), page.paper, np.float32) - page.gradient * (ys + xs) / 2
    if page.shadow:  # a soft-edged shadow over the lower-left part of the page
        paper -= page.shadow / (1 + np.exp(-(ys - xs - 0.2) * 12))
    rgb = np.repeat(paper[:, :, None], 3, axis=2)
    if digit is not None:
        alpha = _ink_alpha(digit, page, max(3, round(page.digit * side)))
        h, w = alpha.shape
        top = int(round(side / 2 + page.offset[0] * side - h / 2))
        left = int(round(side / 2 + page.offset[1] * side - w / 2))
        y0, x0 = max(top, 0), max(left, 0)
        y1, x1 = min(top + h, side), min(left + w, side)
        a = alpha[y0 - top : y1 - top, x0 - left : x1 - left, None]
        rgb[y0:y1, x0:x1] = rgb[y0:y1, x0:x1] * (1 - a) + np.asarray(page.ink, np.float32) * a
    if page.noise:
        rgb += rng.normal(0, page.noise, rgb.shape).astype(np.float32)
    picture = Image.fromarray(rgb.clip(0, 255).round().astype(np.uint8))
    buffer = io.BytesIO()
    if page.jpeg is None:
        picture.save(buffer, "PNG")
    else:
        picture.save(buffer, "JPEG", quality=page.jpeg)
    return buffer.getvalue()


def blank_pages(count: int, seed: int = 0) -> List[bytes]:
    """Pages with no digit: paper of every family above, plain and with noise, shadow, JPEG."""
    rng = np.random.default_rng(seed)
    pages = [p for family in FAMILIES.values() for _, p, _ in family]
    return [render(None, pages[i % len(pages)], rng) for i in range(count)]


def suites() -> Dict[str, Callable]:
    """Digit sources: name -> function(rows) -> (uint8 digit pictures, ink bright; labels)."""
    from benchmarks import other_writers
    from modules import idx
    from pipeline.configs import DATA_ROOT

    def mnist(rows):
        images, labels = idx.read_span_pair(idx.span_dir(DATA_ROOT, 1), idx.TEST_PAIR)
        return images[:rows], labels[:rows]

    def uci(rows):
        pictures, labels = other_writers.scans()
        return pictures[:rows], labels[:rows]

    return {"mnist test": mnist, "uci other writers": uci}


def pen_arrays(arrays: np.ndarray, pen: int) -> np.ndarray:
    """28x28 digits (ink bright) with strokes wider (pen > 0) or narrower by |pen| pixels."""
    from scipy import ndimage

    change = ndimage.grey_dilation if pen > 0 else ndimage.grey_erosion
    return np.stack([change(a, size=(abs(pen) + 1, abs(pen) + 1)) for a in arrays])


def accuracy(classes: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(classes == labels)) if len(labels) else float("nan")


def run(predict_pictures, predict_images, clean_arrays, rows: int, seed: int = 0, write_to: Optional[str] = None):
    """The report: per suite, the clean arrays' accuracy and each (family, strength)'s."""
    report = {"families": {}, "suites": {}}
    for suite, source in suites().items():
        digits, labels = source(rows)
        arrays = clean_arrays[suite](rows)
        rows_report = {
            "clean arrays": accuracy(predict_images(arrays), labels),
            # The pen family's change made on the 28x28 arrays themselves: what the model does with
            # wider or narrower strokes, with no picture in between.
            "pen on arrays": {
                s: accuracy(predict_images(pen_arrays(arrays, page.pen)), labels) for s, page, _ in FAMILIES["pen"]
            },
            "families": {},
        }
        for family, strengths in FAMILIES.items():
            report["families"][family] = [{"strength": s, "ordinary": o} for s, _, o in strengths]
            for strength, page, _ in strengths:
                rng = np.random.default_rng(seed)
                pictures = [render(d, page, rng) for d in digits]
                if write_to:
                    _write(write_to, suite, family, strength, pictures[:20], labels[:20], page)
                classes, found = predict_pictures(pictures)
                rows_report["families"][f"{family}: {strength}"] = {
                    "accuracy": accuracy(classes, labels),
                    "no digit": float(np.mean(~found)),
                }
        report["suites"][suite] = rows_report
    blanks = blank_pages(rows, seed)
    _, found = predict_pictures(blanks)
    report["blank pages"] = {"pages": len(blanks), "no digit": float(np.mean(~found))}
    report["meets"] = meets(report)
    return report


def meets(report: dict) -> dict:
    """Which ordinary strengths fall more than TARGET_DROP below the clean arrays."""
    below = []
    for suite, r in report["suites"].items():
        for family, strengths in report["families"].items():
            for s in strengths:
                score = r["families"][f"{family}: {s['strength']}"]["accuracy"]
                if s["ordinary"] and score < r["clean arrays"] - TARGET_DROP:
                    below.append(f"{suite} / {family}: {s['strength']}")
    return {
        "target_drop": TARGET_DROP,
        "ordinary_below_target": below,
        "blank_no_digit_target": NO_DIGIT_TARGET,
        "blank": report["blank pages"]["no digit"] >= NO_DIGIT_TARGET,
    }


def _write(folder, suite, family, strength, pictures, labels, page) -> None:
    import os

    target = os.path.join(folder, suite.replace(" ", "_"), f"{family}_{strength}".replace(" ", "_"))
    os.makedirs(target, exist_ok=True)
    for i, (data, label) in enumerate(zip(pictures, labels)):
        with open(os.path.join(target, f"{i:03d}_label{label}.{'png' if page.jpeg is None else 'jpg'}"), "wb") as f:
            f.write(data)


def table(report: dict) -> str:
    suites_ = list(report["suites"])
    lines = ["| family | strength | ordinary | " + " | ".join(suites_) + " |", "|---|---|---|" + "---|" * len(suites_)]
    lines.append(
        "| clean 28x28 arrays | - | - | "
        + " | ".join(f"{report['suites'][s]['clean arrays']:.4f}" for s in suites_)
        + " |"
    )
    for family, strengths in report["families"].items():
        for s in strengths:
            key = f"{family}: {s['strength']}"
            cells = " | ".join(f"{report['suites'][x]['families'][key]['accuracy']:.4f}" for x in suites_)
            lines.append(f"| {family} | {s['strength']} | {'yes' if s['ordinary'] else 'no'} | {cells} |")
    return "\n".join(lines)


def family_table(report: dict) -> str:
    """One line per family: per suite, the lowest accuracy at its ordinary strengths and at the
    strengths past them, beside the clean arrays'."""
    suites_ = list(report["suites"])
    head = " | ".join(f"{s}: ordinary, worst | {s}: beyond" for s in suites_)
    lines = [f"| family | {head} |", "|---|" + "---|---|" * len(suites_)]
    lines.append(
        "| clean 28x28 arrays | " + " | ".join(f"{report['suites'][s]['clean arrays']:.3f} | -" for s in suites_) + " |"
    )
    for family, strengths in report["families"].items():
        cells = []
        for s in suites_:
            scores = report["suites"][s]["families"]
            for ordinary in (True, False):
                picked = [
                    (scores[f"{family}: {x['strength']}"]["accuracy"], x["strength"])
                    for x in strengths
                    if x["ordinary"] == ordinary
                ]
                cells.append(f"{min(picked)[0]:.3f} ({min(picked)[1]})" if picked else "-")
        lines.append(f"| {family} | " + " | ".join(cells) + " |")
    cells = []
    for s in suites_:
        pen = report["suites"][s]["pen on arrays"]
        for ordinary in (True, False):
            picked = [
                (pen[x["strength"]], x["strength"]) for x in report["families"]["pen"] if x["ordinary"] == ordinary
            ]
            cells.append(f"{min(picked)[0]:.3f} ({min(picked)[1]})" if picked else "-")
    lines.append("| pen, the same change on the 28x28 arrays | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", help="a pushed version directory (default: newest in serving_model/mnist)")
    p.add_argument("--rows", type=int, default=1000, help="digits per suite (MNIST test split, UCI digits)")
    p.add_argument("--write-pictures", metavar="DIR", help="also write the first 20 pictures of each family")
    p.add_argument("--output", default=output.result_path("pictures.json"))
    args = p.parse_args(argv)
    if args.model_dir is None:
        from benchmarks.serving_bench import newest_version_dir

        args.model_dir = newest_version_dir()
    predict_pictures, predict_images, clean_arrays = in_process(args.model_dir)
    report = {"model_dir": args.model_dir, "rows": args.rows}
    report.update(run(predict_pictures, predict_images, clean_arrays, args.rows, write_to=args.write_pictures))
    output.write_json(report, args.output)
    print(table(report))
    print(family_table(report))
    print(json.dumps(report["meets"], indent=2))
    return 0


def in_process(model_dir: str):
    """The model's two signatures, loaded in this process, as the benchmark's functions."""
    import tensorflow as tf

    from benchmarks import other_writers
    from modules import idx, signatures
    from pipeline.configs import DATA_ROOT

    loaded = tf.saved_model.load(model_dir)
    pictures_fn = loaded.signatures[signatures.PICTURES_SIGNATURE]
    images_fn = loaded.signatures[signatures.IMAGES_SIGNATURE]

    def predict_pictures(pictures, batch=32):
        classes, found = [], []
        for start in range(0, len(pictures), batch):
            out = pictures_fn(**{signatures.PICTURES_INPUT: tf.constant(pictures[start : start + batch])})
            classes.append(out[signatures.CLASSES_OUTPUT].numpy())
            found.append(out[signatures.DIGIT_FOUND_OUTPUT].numpy())
        return np.concatenate(classes), np.concatenate(found)

    def predict_images(images, batch=500):
        return np.concatenate(
            [
                images_fn(**{signatures.IMAGES_INPUT: tf.constant(images[s : s + batch])})[
                    signatures.CLASSES_OUTPUT
                ].numpy()
                for s in range(0, len(images), batch)
            ]
        )

    def mnist(rows):
        return idx.read_span_pair(idx.span_dir(DATA_ROOT, 1), idx.TEST_PAIR)[0][:rows]

    def uci(rows):
        return other_writers.digits()[0][:rows]

    return predict_pictures, predict_images, {"mnist test": mnist, "uci other writers": uci}


if __name__ == "__main__":
    sys.exit(main())
