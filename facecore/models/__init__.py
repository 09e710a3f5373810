"""The model registry (with each model's pretrained weights), the models, checkpoints and int8
quantization. Models know no data and no training.
"""

# Importing the builders registers them.
from facecore.models import resnet as _resnet  # noqa: E402, F401, I001
from facecore.models import custom_cnn as _custom_cnn  # noqa: E402, F401
