"""The model registry (with each model's pretrained weights), the models, checkpoints and int8
quantization. Models know no data and no training.
"""

# Importing the builders registers them.
from facecore.models import resnet as _resnet  # noqa: E402, F401, I001
from facecore.models import custom_cnn as _custom_cnn  # noqa: E402, F401

from facecore._lazy import lazy_exports

_EXPORTS = {
    "ModelSpec": ".registry",
    "create_model": ".registry",
    "get_model_spec": ".registry",
    "list_models": ".registry",
    "register_model": ".registry",
    "DOWNLOAD_COMMAND": ".weights",
    "weights_status": ".weights",
}
__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
__all__ = sorted(_EXPORTS)
