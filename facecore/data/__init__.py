"""Face data: decoding images, import sources, the dataset store, edits, webcam enrollment,
samples, splits, transforms, offline augmentation and training loaders.
"""
