"""cvat-cli module: Nephrops burrow openings from imagine-assist's burrow-detector.

    cvat-cli --server-host https://cvat.example --auth user task auto-annotate <task id> \
        --function-file cvat-plugins/burrow_detector.py -p weights=str:/path/to/model.onnx

Without `weights`, the installed burrow model (or the bundled default) is used. For whole
videos, `imagine-assist track` makes the tracks and counts in one pass instead.
"""

from imagine_assist.cvat.sdk_function import SdkDetectionFunction
from imagine_assist.functions.catalog import load_function


def create(weights: str = "") -> SdkDetectionFunction:
    return SdkDetectionFunction(load_function("burrow-detector", weights or None))
