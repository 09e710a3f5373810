"""The model registry (with each model's pretrained weights), the models, checkpoints and int8
quantization. Models know no data and no training.
"""
