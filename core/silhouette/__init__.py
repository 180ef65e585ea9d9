"""Silhouettes from camera images: a background model per camera, and mask clean-up.

Typical use, per camera::

    model = make_background_model("plate")      # or "mog2"
    model.capture(empty_frames)                  # uint8 BGR frames, studio empty
    mask = model.segment(frame)                  # uint8 (H, W), 1 = performer
"""

from core.silhouette.background import (
                                        BackgroundModel,
                                        CleanPlate,
                                        Mog2Model,
                                        Mog2Params,
                                        PlateParams,
                                        Segmentation,
                                        check_frame,
                                        estimate_gain,
                                        make_background_model,
)
from core.silhouette.cleanup import CleanupParams, clean_mask, mask_iou, refine_edges

__all__ = ["BackgroundModel", "CleanPlate", "CleanupParams", "Mog2Model", "Mog2Params", "PlateParams",
           "Segmentation", "check_frame", "clean_mask", "estimate_gain", "make_background_model",
           "mask_iou", "refine_edges"]
