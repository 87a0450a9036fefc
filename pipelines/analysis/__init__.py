"""Interpretability analyses of the attention agent (SPEC §3), usable on plain arrays.

One module per analysis, each working on numpy arrays or a *stepper* (a model that takes one
step on numpy arrays, :mod:`.stepper`):

* :mod:`.overlay` — attention maps alpha-blended on frames;
* :mod:`.what_where` — the what/where contrast, blue–white–red;
* :mod:`.weight_distribution` — attention mass along x and y;
* :mod:`.saliency` — Greydanus perturbation saliency, batched from one recurrent state;
* :mod:`.novel_state` — splice a sprite into the pixels and watch attention and actions;
* :mod:`.faithfulness` — how well attention predicts saliency, per head;
* :mod:`.object_scores` — per head, attention on each game object (from the emulator's RAM);
* :mod:`.video`, :mod:`.report` — MP4/GIF writers and the self-contained HTML page;
* :mod:`.rollout` — closed-loop (environment) and open-loop (recorded frames) runs;
* :mod:`.pipeline` — all of it, as ``s3ta analyze`` runs it: one analysis after the other, each
  writing its files and handing back its summary entries and report section.
"""
from pipelines.analysis.faithfulness import faithfulness_scores, rank_correlation, top_k_mass
from pipelines.analysis.novel_state import probe_on_frames, region_mass, splice
from pipelines.analysis.overlay import overlay_heads, overlay_sequence
from pipelines.analysis.rollout import Rollout, StepContext, replay, run_agent
from pipelines.analysis.saliency import Saliency, recurrent_evaluator, saliency_maps
from pipelines.analysis.stepper import ModelStepper, SavedModelStepper, as_stepper, load_stepper
from pipelines.analysis.weight_distribution import mass_along_axes
from pipelines.analysis.what_where import what_share, what_where_contrast

__all__ = [
    "faithfulness_scores", "rank_correlation", "top_k_mass", "probe_on_frames", "region_mass", "splice",
    "overlay_heads", "overlay_sequence", "Rollout", "StepContext", "replay", "run_agent", "Saliency",
    "recurrent_evaluator", "saliency_maps", "ModelStepper", "SavedModelStepper", "as_stepper", "load_stepper",
    "mass_along_axes", "what_share", "what_where_contrast",
]
