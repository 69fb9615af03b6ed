"""USB HID: descriptors, key maps and layouts, report state machines and output backends."""
