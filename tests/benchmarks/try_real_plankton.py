"""The plankton models and the watershed on the real ZooScan vignettes in ../shared/data/real.

    .venv/bin/python tests/benchmarks/try_real_plankton.py [--out docs/images]

Prints, per vignette, the classifier's P(multiple) and how many organisms each separator
finds, and draws them side by side (`real-plankton-separation.png`): the vignette, the
trained separator's organisms, the watershed's, and the model's separation lines. Real
vignettes come in their own sizes, so the scale bar strip is taken as a share of the height.
Not collected by pytest: it needs files outside the repository.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

COLOURS = np.array(
    [[214, 69, 65], [52, 152, 219], [46, 204, 113], [155, 89, 182], [243, 156, 18]], np.float32
)


def overlay(image: np.ndarray, masks: list[np.ndarray]) -> np.ndarray:
    out = image.astype(np.float32)
    for index, mask in enumerate(masks):
        out[mask] = 0.45 * out[mask] + 0.55 * COLOURS[index % len(COLOURS)]
    return out.astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--real", default=str(Path(__file__).parents[3] / "shared/data/real"))
    parser.add_argument("--out", default="docs/images")
    parser.add_argument("--bar-share", type=float, default=0.08, help="scale bar strip / height")
    args = parser.parse_args()
    paths = sorted((Path(args.real) / "plankton").glob("*.jpg"))
    if not paths:
        raise SystemExit(f"no real vignettes under {args.real}/plankton")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from imagine_assist.functions.catalog import load_function
    from imagine_assist.images import read_image
    from imagine_assist.models.separate import crop_scale_bar, separate_touching, separation_lines

    function = load_function("plankton-separator")
    figure, axes = plt.subplots(len(paths), 4, figsize=(13, 3.4 * len(paths)))
    print("| vignette | P(multiple) | tag | model organisms | watershed organisms |")
    print("|---|---|---|---|---|")
    for row, path in zip(axes, paths, strict=True):
        image = read_image(path)
        cropped = crop_scale_bar(image, int(args.bar_share * image.shape[0]))
        model_masks = function.separate(cropped)
        watershed_masks = separate_touching(cropped)
        p_multiple = function.classifier.p_multiple(cropped)
        tag = "multiple" if p_multiple >= function.multiple_threshold else "single"
        print(
            f"| {path.name} | {p_multiple:.3f} | {tag} | {len(model_masks)} | "
            f"{len(watershed_masks)} |"
        )
        lines = separation_lines(model_masks, cropped.shape[:2])
        panels = [
            (cropped, f"{path.name[:28]}\nP(multiple) {p_multiple:.2f}: {tag}"),
            (overlay(cropped, model_masks), f"trained separator: {len(model_masks)}"),
            (overlay(cropped, watershed_masks), f"watershed: {len(watershed_masks)}"),
            (255 - lines, "separation lines (model)"),
        ]
        for axis, (picture, title) in zip(row, panels, strict=True):
            axis.imshow(picture, cmap="gray" if picture.ndim == 2 else None, vmin=0, vmax=255)
            axis.set_title(title, fontsize=9)
            axis.axis("off")
    figure.tight_layout()
    target = Path(args.out) / "real-plankton-separation.png"
    figure.savefig(target, dpi=80)
    print(f"\nwrote {target}")


if __name__ == "__main__":
    main()
