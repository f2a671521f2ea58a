"""Reaction models, each fulfilling the generator contract (:mod:`react.reaction.contract`)."""
