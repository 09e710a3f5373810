"""``python -m facecore``: one module per command group, each adding its own arguments."""
