"""The video path: sources (V4L2), the frame hub, pacing, JPEG and H.264 encoding."""
