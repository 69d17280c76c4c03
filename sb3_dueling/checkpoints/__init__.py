from sb3_dueling.checkpoints.manifest import MANIFEST, find_latest_checkpoint, read_manifest
from sb3_dueling.checkpoints.resume import ResumableCheckpointCallback, resume_training
from sb3_dueling.checkpoints.save_load import load_checkpoint, load_model_file, save_checkpoint
from sb3_dueling.model_files import CheckpointError, MissingCheckpointFileError, check_model_file, model_file_errors

__all__ = [
    "MANIFEST",
    "CheckpointError",
    "MissingCheckpointFileError",
    "ResumableCheckpointCallback",
    "check_model_file",
    "find_latest_checkpoint",
    "load_checkpoint",
    "load_model_file",
    "model_file_errors",
    "read_manifest",
    "resume_training",
    "save_checkpoint",
]
