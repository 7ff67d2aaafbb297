"""The VM harness: fetch the pinned Debian kernel, build images, serve them, boot QEMU, read its console.

Everything here is test tooling that runs on the host; nothing in it ships in the initramfs.
"""
