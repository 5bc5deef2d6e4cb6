"""The burrow tracker as a cvat-sdk tracking function, for CVAT editions that run agents
(`cvat-cli function create-native` and `run-agent`). States stay in the agent's process,
so they are plain objects here; the Nuclio route signs them because they cross the browser.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import PIL.Image

from imagine_assist.functions.appearance import grey
from imagine_assist.functions.tracker import TrackerFunction
from imagine_assist.functions.tracker_state import TrackState
from imagine_assist.images import upright_rgb8
from imagine_assist.usage.record import record_use


@dataclass
class PreparedFrame:
    rgb: np.ndarray
    grey: np.ndarray
    _detected: np.ndarray | None = field(default=None, repr=False)

    def detected(self, tracker: TrackerFunction) -> np.ndarray:
        """Detections on the whole frame, computed once for all the shapes tracked on it."""
        if self._detected is None:
            found = tracker.detector(self.rgb, tracker.threshold)
            self._detected = found.xyxy.astype(np.float64)
        return self._detected


class SdkTrackingFunction:
    def __init__(self, tracker: TrackerFunction) -> None:
        import cvat_sdk.auto_annotation as cvataa

        self.tracker = tracker
        self.spec = cvataa.TrackingFunctionSpec(supported_shape_types={"rectangle"})

    def preprocess_image(self, context, image: PIL.Image.Image) -> PreparedFrame:
        rgb = upright_rgb8(image)  # as the gateway decodes it
        record_use(self.tracker.spec.id)  # once per frame, however many tracks it carries
        return PreparedFrame(rgb, grey(rgb))

    def init_tracking_state(self, context, frame: PreparedFrame, shape) -> TrackState:
        return self.tracker.start(frame.grey, np.array(shape.points[:4], dtype=np.float64))

    def track(self, context, frame: PreparedFrame, state: TrackState):
        import cvat_sdk.auto_annotation as cvataa

        moved = self.tracker.follow(frame.detected(self.tracker), frame.grey, state)
        state.box, state.velocity, state.template = moved.box, moved.velocity, moved.template
        return cvataa.TrackableShape(type="rectangle", points=[float(v) for v in moved.box])
