"""The pure domain core: canonical models, mapping, validation, identity, merge. No I/O."""
