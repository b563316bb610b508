"""Reference for DINO's photometric augmentations (tests/test_train_photometric.c): each op
written from torchvision's documented definitions in float64 numpy, independently of the C code:
adjust_brightness/contrast/saturation = _blend(img, ref, f) = clamp(f img + (1 - f) ref, 0, 1)
with ref = 0 / mean of rgb_to_grayscale / rgb_to_grayscale (0.299, 0.587, 0.114); adjust_hue
through colorsys (HSV), grayscale, Gaussian blur via scipy.ndimage.gaussian_filter1d
(radius ceil(3 sigma), mode "mirror"), solarize (x >= 0.5 -> 1 - x).

Usage: photometric_ref.py DIR (img.npy, out.npy, params.npy from the C test)."""
import colorsys
import math
import sys

import numpy as np
from scipy.ndimage import gaussian_filter1d


def gray(x):
    return 0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]


def blend(x, f, ref):
    return np.clip(f * x + (1 - f) * ref, 0, 1)


def hue(x, shift):
    out = x.copy()
    for i in range(x.shape[1]):
        for j in range(x.shape[2]):
            h, s, v = colorsys.rgb_to_hsv(*x[:, i, j])
            out[:, i, j] = colorsys.hsv_to_rgb((h + shift) % 1.0, s, v)
    return out


def apply(x, p):
    jit, order, fb, fc, fs, fh = p[0], [int(v) for v in p[1:5]], p[5], p[6], p[7], p[8]
    if jit:
        for o in order:
            if o == 0:
                x = blend(x, fb, 0.0)
            elif o == 1:
                x = blend(x, fc, gray(x).mean())
            elif o == 2:
                x = blend(x, fs, gray(x)[None])
            else:
                x = hue(x, fh)
    if p[9]:
        x = np.repeat(gray(x)[None], 3, 0)
    if p[10]:
        sigma = p[11]
        rad = min(int(math.ceil(3 * sigma)), x.shape[1] - 1)
        if rad >= 1:
            x = gaussian_filter1d(x, sigma, axis=2, mode="mirror", radius=rad)
            x = gaussian_filter1d(x, sigma, axis=1, mode="mirror", radius=rad)
    if p[12]:
        x = np.where(x >= 0.5, 1 - x, x)
    return x


def main():
    d = sys.argv[1]
    img = np.load(d + "/img.npy").astype(np.float64)
    out = np.load(d + "/out.npy").astype(np.float64)
    par = np.load(d + "/params.npy").astype(np.float64)
    names = ["brightness", "contrast", "saturation", "hue +", "hue -", "grayscale", "blur", "solarize", "all"]
    bad = 0
    for k in range(len(par)):
        ref = apply(img.copy(), par[k])
        err = np.abs(out[k] - ref).max()
        changed = np.abs(ref - img).max()
        ok = err <= 1e-5 and changed > 1e-3
        print("  %-10s max|C - ref| %.2e (changes the image by up to %.3f)%s" % (names[k], err, changed, "" if ok else "  FAIL"))
        bad += not ok
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
