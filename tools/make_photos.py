#!/usr/bin/env python3
"""make_photos.py: 224x224 JPEG (quality 90) crops of the photographs in Debian's
plasma-workspace-wallpapers, for the ImageNet-shaped link benchmark (tools/link_bench.py).

The package ships 30 KDE wallpapers; 11 of them are photographs (the others are renders and
illustrations), listed in PHOTOS. Each photograph (its largest file) gives 9 crops: a centred
square, and squares at 1/2 and 1/3 of the short side at fixed positions, each resized to 224x224
(bicubic) and written as RGB JPEG quality 90 (Pillow). Deterministic: same package, same files.

Held-out split: the crops of CALIB_PHOTOS go to OUT/calib (BatchNorm re-estimation in
tools/export_torchvision.py --bn-images), the crops of the other 8 photographs to OUT/eval
(what the benchmark sends). No photograph contributes to both.

    apt-get install plasma-workspace-wallpapers
    /usr/bin/python3 tools/make_photos.py --out /var/tmp/splitrans-imagenet/photos
"""
import argparse
import glob
import os
import sys

from PIL import Image

WALLPAPERS = "/usr/share/wallpapers"
PHOTOS = ["BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf", "Grey", "Kite",
          "OneStandsOut", "Path", "summer_1am"]
CALIB_PHOTOS = ["ColdRipple", "Grey", "Kite"]
# (side as a fraction of the image's short side, centre x, centre y as fractions of width/height)
CROPS = [(1.0, 0.5, 0.5), (0.5, 0.25, 0.25), (0.5, 0.75, 0.25), (0.5, 0.25, 0.75), (0.5, 0.75, 0.75),
         (0.5, 0.5, 0.5), (1 / 3, 0.2, 0.5), (1 / 3, 0.8, 0.5), (1 / 3, 0.5, 0.8)]


def largest_image(name):
    files = glob.glob(os.path.join(WALLPAPERS, name, "contents", "images", "*"))
    if not files:
        raise SystemExit(f"make_photos: {WALLPAPERS}/{name} missing: apt-get install plasma-workspace-wallpapers")
    return max(files, key=lambda f: (Image.open(f).size[0] * Image.open(f).size[1], f))


def crops(img, size):
    w, h = img.size
    for frac, cx, cy in CROPS:
        side = int(min(w, h) * frac)
        x0 = min(max(0, int(cx * w - side / 2)), w - side)
        y0 = min(max(0, int(cy * h - side / 2)), h - side)
        yield img.crop((x0, y0, x0 + side, y0 + side)).resize((size, size), Image.BICUBIC)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="output directory (gets calib/ and eval/)")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--quality", type=int, default=90)
    args = ap.parse_args()
    counts = {"calib": 0, "eval": 0}
    for name in PHOTOS:
        part = "calib" if name in CALIB_PHOTOS else "eval"
        d = os.path.join(args.out, part)
        os.makedirs(d, exist_ok=True)
        with Image.open(largest_image(name)) as im:
            img = im.convert("RGB")
        for i, c in enumerate(crops(img, args.size)):
            c.save(os.path.join(d, f"{name}_{i}.jpg"), "JPEG", quality=args.quality)
            counts[part] += 1
    print(f"make_photos: {counts['eval']} eval and {counts['calib']} calibration images ({args.size}x{args.size}, "
          f"JPEG quality {args.quality}) in {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
