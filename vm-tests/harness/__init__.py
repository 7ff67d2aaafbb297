"""The VM harness: fetch the pinned Debian kernel, build images, serve them, boot QEMU, read its console.

Everything here is host-side test tooling; nothing in it ships in the initramfs. One job per module:

- `kernel`: `fetch()`/`require() -> Kernel(root, release)` from `vm-tests/kernel.pin`, cached in cache/kernel
  (`python -m harness.kernel fetch`, called by `make deps`).
- `images`: `build_initramfs(kernel, init_script, files, modules)` (busybox + module closure, cached by content)
  and `build_ext4(out, files)` (`mke2fs -d`, always with /etc/os-release).
- `ipxe`: `IpxeScript(targets=(SanTarget,...), kernel_url, initrd_url, cmdline, initiator_iqn, chap, static)`.
- `http`: `StaticServer(dir)` on 127.0.0.1 and a free port; `guest_url(name)` is how the guest reaches it.
- `qemu`: `VmSpec` -> `build_command(spec, accel)`; `run(spec, bound, ...) -> ConsoleResult`; bounded KVM probe.
- `console`: `PYISCSI-MARK <name> <uptime>` markers, kernel stamps, exit reason, the log path.
- `lab`: `run_in_lab(argv, ...) -> LabResult(status, stdout, stderr, console)`; `python -m harness.lab -- CMD`.
- `capture_ibft`: iPXE sanhook boots that read the iBFT back; `python -m harness.capture_ibft` redoes fixtures.
"""
