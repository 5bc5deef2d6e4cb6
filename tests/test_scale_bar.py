"""The scale-bar strip is found in each vignette (issue 14: a fixed 22 rows either leaves
the bar in or cuts the organism's foot off)."""

import cv2
import numpy as np

from imagine_assist.models.scale_bar import cut_scale_bar, scale_bar_rows
from imagine_assist.samples import generate_plankton


def blank(height: int, width: int) -> np.ndarray:
    return np.full((height, width, 3), 250, np.uint8)


def with_bar(image: np.ndarray, length: int, thickness: int = 2, text_scale: float = 0.6):
    """ZooProcess's layout: "1 mm" printed over a bar near the bottom left."""
    height = image.shape[0]
    bottom = height - 6
    image[bottom : bottom + thickness, 9 : 9 + length] = 0
    cv2.putText(image, "1 mm", (11, bottom - 5), cv2.FONT_HERSHEY_PLAIN, text_scale, 0, 1)
    return image


def dark_left_in(image: np.ndarray) -> int:
    return int((cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) < 128).sum())


def test_the_strip_holds_the_whole_bar_and_label_and_nothing_else():
    for sample in generate_plankton(6, seed=3, multiple_share=0.5):
        rows = scale_bar_rows(sample.image)
        assert 10 <= rows <= sample.scale_bar_rows  # the label and bar, not the organism
        strip = sample.image[-rows:]
        organisms = np.logical_or.reduce([obj.mask for obj in sample.objects])
        assert not organisms[-rows:].any()
        # everything dark under the strip's top is the bar or its label
        assert dark_left_in(sample.image[:-rows][-3:]) == 0 and dark_left_in(strip) > 100


def test_bars_of_other_resolutions_are_found():
    for length, thickness, text_scale in [(48, 1, 0.5), (96, 2, 0.6), (192, 4, 1.2)]:
        image = with_bar(blank(300, 260), length, thickness, text_scale)
        image[60:140, 80:180] = 150  # an organism well above (lighter than the print)
        rows = scale_bar_rows(image)
        assert 6 < rows < 40, (length, rows)
        assert dark_left_in(image[:-rows]) == 0


def test_no_bar_means_nothing_is_cropped():
    image = blank(200, 200)
    image[50:150, 60:140] = 90
    assert scale_bar_rows(image) == 0
    assert scale_bar_rows(blank(16, 16)) == 0


def test_an_organism_reaching_into_the_strip_is_never_cut():
    image = with_bar(blank(240, 240), 96)
    image[40:236, 150:170] = 140  # a long body down to the bottom edge, beside the bar
    assert scale_bar_rows(image) == 0


def test_a_dark_thin_organism_above_is_not_taken_for_the_bar():
    image = blank(300, 300)
    image[100:102, 40:200] = 20  # a thin dark fibre, in the middle of the vignette
    assert scale_bar_rows(image) == 0


def test_cutting_keeps_a_vignette_that_is_nothing_but_its_strip():
    bar_only = with_bar(blank(30, 120), 96)  # the bar and its label, nothing above
    assert cut_scale_bar(bar_only, 30) is bar_only and cut_scale_bar(bar_only, 45) is bar_only
    assert cut_scale_bar(bar_only).shape[0] > 0  # found or not, never emptied
    image = with_bar(blank(300, 260), 96)
    image[60:140, 80:180] = 150
    assert cut_scale_bar(image).shape[0] == 300 - scale_bar_rows(image) < 300
    assert cut_scale_bar(image, 0) is image
