"""cvat-sdk tracking function: imagine-assist's burrow tracker, for CVAT editions that run
agents (CVAT Enterprise or Online; cvat-cli >= 2.42):

    cvat-cli function create-native "Burrow tracker" --function-file cvat-plugins/burrow_tracker.py
    cvat-cli function run-agent <function id> --function-file cvat-plugins/burrow_tracker.py \
        -p weights=str:/path/to/model.onnx

On Community CVAT use the Nuclio function `burrow-tracker` (or `imagine-assist serve`).
"""

from imagine_assist.cvat.sdk_tracking import SdkTrackingFunction
from imagine_assist.functions.catalog import load_function


def create(weights: str = "") -> SdkTrackingFunction:
    return SdkTrackingFunction(load_function("burrow-tracker", weights or None))
