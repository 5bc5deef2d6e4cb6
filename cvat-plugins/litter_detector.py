"""cvat-cli module: litter boxes from imagine-assist's litter-detector, run on this machine.

    cvat-cli --server-host https://cvat.example --auth user task auto-annotate <task id> \
        --function-file cvat-plugins/litter_detector.py -p weights=str:/path/to/model.onnx \
        [--conf-threshold 0.4] [--conv-mask-to-poly]

Without `weights`, the family's installed model (`imagine-assist train litter`) is used.
"""

from imagine_assist.cvat.sdk_function import SdkDetectionFunction
from imagine_assist.functions.catalog import load_function


def create(weights: str = "", tile_size: int = 0) -> SdkDetectionFunction:
    return SdkDetectionFunction(
        load_function("litter-detector", weights or None, tile_size=tile_size or None)
    )
