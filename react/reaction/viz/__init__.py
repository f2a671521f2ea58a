"""Pictures of generated reactions: plots, a face-sketch video and an HTML evaluation report.

``react viz clip`` draws one clip's ``result-<k>.pth`` samples; ``react viz report`` turns an
evaluation (``metrics.json``, predictions, dataset) into a browsable folder.
See docs/visualisation.md.
"""

from react.reaction.viz.clip import render_clip
from react.reaction.viz.inputs import VizError, find_samples, load_attributes, load_samples
from react.reaction.viz.report import write_report

__all__ = ["VizError", "find_samples", "load_attributes", "load_samples", "render_clip", "write_report"]
