"""Text-line images for the PP-OCR direction classifier, rendered with Pillow.

Each line is a few consecutive words of a real sentence (``data/sentences.txt``,
public-domain texts), drawn in a font, size, colour, margin and noise level
drawn from a seeded generator, then given to the classifier upright (label 0,
"0 degrees") and rotated by 180 degrees (label 1). The label is known by
construction. Calibration and evaluation lines come from disjoint sets of
sentences (every fourth sentence calibrates) and different seeds.

Fonts: the DejaVu and Liberation TrueType fonts where the machine has them
(``/usr/share/fonts``, Debian's fonts-dejavu-core is on most images), and
Pillow's own scalable default font (Pillow >= 10.1), which every Pillow wheel
has; :func:`fonts` says which were found, so a report can state it.

Preprocessing is RapidOCR's for this model (``TextClassifier.resize_norm_img``):
BGR, height 48, width ``ceil(48 * w / h)`` capped at 192, values
``(v / 255 - 0.5) / 0.5``, zero-padded on the right to 192.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SENTENCES = HERE / "data" / "sentences.txt"

_FONT_CANDIDATES = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSerif-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSansCondensed-Oblique.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSerifCondensed-Italic.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSerif-Regular.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationMono-Regular.ttf",
]


def sentences():
    return [s.strip() for s in SENTENCES.read_text(encoding="utf-8").splitlines()
            if s.strip() and not s.startswith("#")]


def fonts():
    """The fonts used, in order: the TrueType files found, then Pillow's default ("pillow-default")."""
    return [p for p in _FONT_CANDIDATES if Path(p).is_file()] + ["pillow-default"]


def _font(name, size):
    from PIL import ImageFont

    if name != "pillow-default":
        return ImageFont.truetype(name, size)
    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1 (FreeType): scalable
    except TypeError:  # older Pillow: its fixed-size bitmap font
        return ImageFont.load_default()


def lines(split, seed):
    """The text lines of ``split`` ("calibration": every fourth sentence, "evaluation": the
    others): each sentence cut into runs of 2 to 6 words, the cuts drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    out = []
    for i, s in enumerate(sentences()):
        if (i % 4 == 0) != (split == "calibration"):
            continue
        words = s.split()
        j = 0
        while j < len(words):
            k = int(rng.integers(2, 7))
            out.append(" ".join(words[j:j + k]))
            j += k
    return out


def render(text, rng, font_names):
    """One text line as an RGB uint8 array (H, W, 3), dark text on a light background."""
    from PIL import Image, ImageDraw

    name = font_names[int(rng.integers(len(font_names)))]
    font = _font(name, int(rng.integers(18, 41)))
    left, top, right, bottom = font.getbbox(text)
    ml, mr = (int(v) for v in rng.integers(2, 21, size=2))
    mt, mb = (int(v) for v in rng.integers(2, 13, size=2))
    w, h = right - left + ml + mr, bottom - top + mt + mb
    bg = tuple(int(v) for v in np.clip(rng.integers(170, 256) + rng.integers(-20, 21, size=3), 0, 255))
    fg = tuple(int(v) for v in np.clip(rng.integers(0, 90) + rng.integers(-20, 21, size=3), 0, 255))
    img = Image.new("RGB", (w, h), bg)
    ImageDraw.Draw(img).text((ml - left, mt - top), text, font=font, fill=fg)
    a = np.asarray(img, dtype=np.float32)
    sigma = float(rng.uniform(0, 12))
    if sigma > 0:
        a = a + rng.normal(0, sigma, size=a.shape).astype(np.float32)
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def preprocess(rgb, height=48, max_width=192):
    """RapidOCR's classifier input for one RGB image: (3, 48, 192) float32."""
    from PIL import Image

    h, w = rgb.shape[:2]
    rw = min(max_width, int(math.ceil(height * w / float(h))))
    img = Image.fromarray(rgb[:, :, ::-1].copy()).resize((rw, height), Image.BILINEAR)  # BGR, as cv2 reads
    x = np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / np.float32(255)
    x = (x - np.float32(0.5)) / np.float32(0.5)
    out = np.zeros((3, height, max_width), np.float32)
    out[:, :, :rw] = x
    return out


def dataset(split, seed, limit=None, font_names=None):
    """``(x, y, texts)``: every line of ``split`` (or the first ``limit``) upright (y = 0) and
    rotated by 180 degrees (y = 1), interleaved; x is (2 * lines, 3, 48, 192) float32."""
    texts = lines(split, seed)[:limit]
    font_names = font_names or fonts()
    rng = np.random.default_rng(seed + 1)
    xs, ys = [], []
    for t in texts:
        a = render(t, rng, font_names)
        xs += [preprocess(a), preprocess(a[::-1, ::-1])]
        ys += [0, 1]
    return np.stack(xs), np.array(ys), texts
