"""Face detection (Haar cascade, YuNet) behind one interface, and cropping."""
