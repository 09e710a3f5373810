"""PyTorch and torchvision, each imported as a whole package, before anything imports a part of them.

``streamlit_app.py`` and every page import this module first. Sessions run in threads of one
process, and on a cold server a page can run without the app script (Streamlit's legacy mode for
a ``pages/`` folder runs ``/dataset`` directly): two tabs opened together then imported
torchvision through different submodules at once (``torchvision.models`` in one thread,
``torchvision.transforms`` in the other), met its circular imports half-done ("cannot import name
'InterpolationMode' from partially initialized module") and every page failed until a restart.
Through this module the second session waits until the first has imported both packages whole.
"""

import torch  # noqa: F401
import torchvision  # noqa: F401
