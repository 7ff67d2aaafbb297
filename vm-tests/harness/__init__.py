"""The VM harness: fetch the pinned Debian kernel, build images, serve them, boot QEMU, read its console.

Everything here is host-side test tooling; nothing in it ships in the initramfs. One job per module:

- `kernel`: `fetch()`/`require() -> Kernel(root, release)` from `vm-tests/kernel.pin`, cached in the per-user
  cache `paths.CACHE` ($PYISCSI_CACHE, default ~/.cache/pyiscsi; `python -m harness.kernel fetch`, by `make deps`).
- `images`: `build_initramfs(kernel, init_script, files, modules)` (busybox + module closure, cached by content)
  and `build_ext4(out, files)` (`mke2fs -d`, always with /etc/os-release).
- `ipxe`: `IpxeScript(targets=(SanTarget,...), kernel_url, initrd_url, cmdline, initiator_iqn, chap, static)`.
- `http`: `StaticServer(dir)` on 127.0.0.1 and a free port; `guest_url(name)` is how the guest reaches it.
- `qemu`: `VmSpec` -> `build_command(spec, accel)`; `run(spec, bound, ...) -> ConsoleResult`; bounded KVM probe.
- `console`: `PYISCSI-MARK <name> <uptime>` markers, kernel stamps, exit reason, the log path.
- `lab`: `run_in_lab(argv, ...) -> LabResult(status, stdout, stderr, console)`; `python -m harness.lab -- CMD`.
- `capture_ibft`: iPXE sanhook boots that read the iBFT back; `python -m harness.capture_ibft` redoes fixtures.
- `bootvm`, `rootimage`, `initramfs`, `demo`: one iPXE boot of our image to a busybox real root; `make demo`.
- `netlab`: `NetLab(LabConfig)`, a routed test network in a namespace of its own (bridge, taps, dnsmasq with
  DHCPv4/DHCPv6/RAs and option 17, iPXE over HTTP, tgtd on the namespace's address).
- `debroot`: real Debian 12 roots (mmdebstrap from the host's apt sources, our .deb, the root's own dracut);
  `realboot`: boots them through iPXE with a root and a data target and reads what the guest checks print.
- `vmtest`: `pyiscsi-vmtest`, the boot-test tool for other people's CI (JUnit and JSON reports).
"""
