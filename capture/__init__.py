"""Video sources (V4L2, demo target, QEMU), the frame hub and JPEG encoding."""
