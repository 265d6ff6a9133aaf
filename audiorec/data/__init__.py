"""Data: corpus import and validation, the manifest format, splits, datasets, a synthetic corpus."""

from audiorec.data.corpora import ImportResult, ValidationConfig, import_corpus, scan_corpus
from audiorec.data.manifest import ManifestError, Utterance, read_manifest, write_manifest
from audiorec.data.splits import Split, loso_folds, speaker_split

__all__ = [
    "ImportResult", "ManifestError", "Split", "Utterance", "ValidationConfig", "import_corpus",
    "loso_folds", "read_manifest", "scan_corpus", "speaker_split", "write_manifest",
]
