"""
The errors of checkpoint and model files: each names the file and what is wrong with it. They are
defined with the model-file check in :mod:`sb3_dueling.model_files`, which the learners' ``load`` uses
without importing this package.
"""

from sb3_dueling.model_files import CheckpointError, MissingCheckpointFileError, check_model_file, model_file_errors

__all__ = ["CheckpointError", "MissingCheckpointFileError", "check_model_file", "model_file_errors"]
