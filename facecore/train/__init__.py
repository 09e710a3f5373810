"""Training: the config, the loop and its callbacks, DDP, background jobs and the runs it writes."""

from facecore._lazy import lazy_exports

_EXPORTS = {
    "add_run": ".addrun",
    "MONITORS": ".config",
    "OPTIMIZERS": ".config",
    "SCHEDULES": ".config",
    "SWITCHES": ".config",
    "TrainConfig": ".config",
    "setting_bounds": ".config",
    "Job": "facecore.recognize.jobs",
    "train": ".loop",
    "Run": "facecore.recognize.runs",
    "delete_run": ".runs",
    "list_runs": "facecore.recognize.runs",
    "run_metrics": "facecore.recognize.runs",
    "trainable_configs": ".runs",
    "weights_missing": ".runs",
}
__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
__all__ = sorted(_EXPORTS)
