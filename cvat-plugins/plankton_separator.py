"""cvat-cli module: one mask per organism in ZooScan vignettes, plus a single/multiple tag.

    cvat-cli --server-host https://cvat.example --auth user task auto-annotate <task id> \
        --function-file cvat-plugins/plankton_separator.py \
        [-p weights=str:/path/to/separator.onnx] [-p scale_bar_rows=int:22] [--conv-mask-to-poly]

The task needs a mask (or polygon) label "organism" and tag labels "single" and "multiple"
(with a text attribute "p_multiple" to keep the classifier's probability). Without
`weights`, the installed plankton models (`imagine-assist train plankton`) are used, else the
bundled ones; `scale_bar_rows` is the height of the scale-bar strip cropped off the bottom.
"""

from imagine_assist.cvat.sdk_function import SdkSeparatorFunction
from imagine_assist.functions.catalog import load_function


def create(weights: str = "", scale_bar_rows: int = -1) -> SdkSeparatorFunction:
    function = load_function("plankton-separator", weights or None)
    if scale_bar_rows >= 0:
        function.scale_bar_rows = scale_bar_rows
    return SdkSeparatorFunction(function)
