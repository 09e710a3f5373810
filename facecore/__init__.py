"""facecore: face datasets, detection, three models compared, training and live recognition."""

__version__ = "0.1.0"
