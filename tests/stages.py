"""Stage groups the tests switch off together, read from the registry."""

from thresher.transforms import stage as registry

# The stages that judge content (language, quality, URLs, PII): tests of other stages on synthetic
# text switch these off. They are the stages of the transforms/filters package.
CURATION_FILTERS = tuple(s.name for s in registry.stages()
                         if s.params.__module__.startswith("thresher.transforms.filters."))
STAGE_NAMES = registry.names()
