"""Virtual media: the image store on the data partition, streaming uploads, URL downloads, the
ISO 9660 volume label, and network block devices for images streamed from a URL.

This room knows files and bytes, not targets: it never imports :mod:`appliance.targets`, so the
target backends (the gadget's LUN, the demo machine) can use it (the demo reads an image's volume
label) and :mod:`appliance.mediactl` puts the two together. See docs/media.md.
"""
