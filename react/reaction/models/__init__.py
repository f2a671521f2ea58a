"""Reaction models, each fulfilling the generator contract (:mod:`react.reaction.contract`).

:data:`GENERATORS` is the registry: a name (the task name of a config, ``task: regnn``) -> where its
model class and model-config dataclass live. Adding a model is one line here (docs/generators.md);
modules are imported only when their generator is used.
"""

from __future__ import annotations

import importlib
from typing import NamedTuple


class Generator(NamedTuple):
    """Where a generator lives: ``module`` holds the ``model`` class and its ``config`` dataclass;
    ``loss``: the name of a loss-config dataclass the model takes as ``loss=`` (the task config's
    top-level ``loss`` section), or None; ``setup``: a function outside ``models/`` (models read no
    files) that loads a new model's pretrained parts, e.g. BeLFusion's stage-1 VAE, or None."""

    module: str
    model: str
    config: str
    loss: str | None = None
    setup: str | None = None  # dotted name of ``setup(model, task)``: files read when training starts

    def load(self, attribute: str) -> type:
        """The class named ``attribute`` (``model``, ``config`` or ``loss``) of this generator, or the
        function ``setup`` names (``package.module.function``)."""
        name = getattr(self, attribute)
        module, _, name = name.rpartition(".") if attribute == "setup" else (self.module, "", name)
        return getattr(importlib.import_module(module), name)


GENERATORS: dict[str, Generator] = {
    "regnn": Generator("react.reaction.models.regnn", "REGNN", "ModelConfig", loss="LossConfig"),
    "transvae": Generator("react.reaction.models.transvae", "TransVAE", "TransVAEConfig"),
    "belfusion_vae": Generator("react.reaction.models.belfusion", "BehaviouralVAE", "VAEConfig"),
    "belfusion": Generator("react.reaction.models.belfusion", "BeLFusion", "BeLFusionConfig",
                           setup="react.reaction.belfusion_loader.setup"),
}
