"""Knob-space explorer: quality-diversity search that maps a synth's sounds by timbre.

``ddsp-gym explore`` (:mod:`ddsp_gym.explore.commands`); descriptors and objective in
:mod:`~ddsp_gym.explore.descriptors`, the search in :mod:`~ddsp_gym.explore.search`, the
outputs in :mod:`~ddsp_gym.explore.report`; docs/explore.md.
"""
