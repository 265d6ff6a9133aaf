"""audiorec: build your own speech recognizer, from a folder of recordings to a trained,
evaluated model.

The package follows the pipeline: :mod:`audio` (load), :mod:`data` (corpora, manifests, splits),
:mod:`features`, :mod:`augment`, :mod:`models`, :mod:`tasks` (training wrappers), :mod:`train`,
:mod:`cv` (cross-validation), :mod:`evaluate`, :mod:`metrics`, :mod:`plots`, :mod:`recognize`, :mod:`cli`.
"""

__version__ = "0.1.0"
