"""USB HID: descriptors, key maps and layouts, report state machines, the controller and output
backends (OTG gadget, CH9329)."""
