from boot.cli import entry

entry()
