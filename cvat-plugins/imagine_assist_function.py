"""Any imagine-assist function as a cvat-cli module, run on this machine:

    cvat-cli --server-host https://cvat.example --auth user task auto-annotate <task id> \
        --function-file cvat-plugins/imagine_assist_function.py -p function=str:fish-detector \
        [-p weights=str:/path/to/model.onnx] [-p tile_size=int:640] [-p tile_overlap=int:64] \
        [--conf-threshold 0.4] [--conv-mask-to-poly]

`function` is a function id: fish-detector, litter-detector, burrow-detector,
plankton-separator (`-p scale_bar_rows=int:22` fixes the strip cropped off the bottom of a
vignette; by default it is found in each one), or a user's own `<family>-detector`; an
unknown id lists the known ones. Without `weights`, the family's installed model is used,
else the bundled one. `burrow-tracker` is a tracking function for CVAT editions that run
agents (cvat-cli >= 2.42):

    cvat-cli function create-native "Burrow tracker" \
        --function-file cvat-plugins/imagine_assist_function.py -p function=str:burrow-tracker
    cvat-cli function run-agent <function id> \
        --function-file cvat-plugins/imagine_assist_function.py -p function=str:burrow-tracker
"""

from imagine_assist.cvat.sdk_function import (
    cvat_cli_parameters,
    sdk_function_for,
    shown_by_cvat_cli,
)
from imagine_assist.functions.catalog import load_function


def create(**parameters):
    with shown_by_cvat_cli():
        given = cvat_cli_parameters(parameters)
        loaded = load_function(
            given.function,
            given.weights,
            tile_size=given.tile_size,
            tile_overlap=given.tile_overlap,
        )
        return sdk_function_for(loaded, given.scale_bar_rows)
