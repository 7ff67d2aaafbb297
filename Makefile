# pyiscsi — the two commands a newcomer needs are `make demo` and `make test`; both install what they need.
SHELL := /bin/bash
PYTHON_HOST ?= /usr/bin/python3
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
DESTDIR ?=
PREFIX ?= /usr
# Heavy artefacts (kernel, Debian roots, images) live outside the checkout so that a fresh clone reuses them.
export PYISCSI_CACHE ?= $(HOME)/.cache/pyiscsi

deps: deps-apt deps-venv deps-cache deps-kernel

.PHONY: deps deps-apt deps-venv deps-cache deps-kernel test lint demo initramfs bench install clean deb test-distro

# Installs only what is missing; runs `apt-get update` first only then.
deps-apt:
	@pkgs=$$(grep -v '^\s*#' deps/debian-packages.txt | xargs); \
	missing=$$(for p in $$pkgs; do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "deps: installing Debian packages: $$missing"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# The venv is made from Debian's python3: the frozen initramfs runtime is built from the same interpreter.
$(VENV)/.stamp: pyproject.toml
	@test -x $(PY) || $(PYTHON_HOST) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

deps-venv: deps-apt $(VENV)/.stamp

# `cache` in the checkout is a link to the per-user cache (a real directory left by an older checkout moves there).
deps-cache:
	@mkdir -p "$(PYISCSI_CACHE)"
	@if [ -d cache ] && [ ! -L cache ]; then cp -a cache/. "$(PYISCSI_CACHE)/" && rm -rf cache; fi
	@ln -sfn "$(PYISCSI_CACHE)" cache

deps-kernel: deps-venv deps-cache
	@if [ -f vm-tests/harness/kernel.py ]; then PYTHONPATH=vm-tests $(PY) -m harness.kernel fetch; fi

lint: deps-venv
	$(VENV)/bin/ruff check .

test: deps lint
	$(VENV)/bin/pytest $(PYTEST_ARGS)
	$(MAKE) --no-print-directory test-distro

demo: deps
	@if [ -f vm-tests/harness/demo.py ]; then PYTHONPATH=vm-tests $(PY) -m harness.demo $(if $(filter-out 0,$(UEFI)),--uefi); \
	else echo "demo: not built yet (issue 6)"; exit 1; fi

initramfs: deps
	@if [ -f vm-tests/harness/initramfs.py ]; then PYTHONPATH=vm-tests $(PY) -m harness.initramfs $(if $(KVER),--kver $(KVER)) $(if $(KERNEL),--kernel $(KERNEL)); \
	else echo "initramfs: not built yet (issue 6)"; exit 1; fi

# BENCH="realroot boot": only those benchmarks (python -m bench's names); all of them without it
bench: deps
	$(PY) -m bench $(BENCH)

# Our packages go to a private directory, off python3's own path, that only the `pyiscsi` wrapper and the dracut
# module put on sys.path (the Debian package uses this target too). Needs nothing but coreutils and sed.
PRIVDIR = $(PREFIX)/lib/pyiscsi/python
MODDIR = $(PREFIX)/lib/dracut/modules.d/95pyiscsi
install:
	install -d '$(DESTDIR)$(MODDIR)' '$(DESTDIR)$(PRIVDIR)' '$(DESTDIR)$(PREFIX)/sbin' '$(DESTDIR)$(PREFIX)/share/man/man8'
	cp -R dracut/95pyiscsi/. '$(DESTDIR)$(MODDIR)/'
	sed -i 's|^PYISCSI_PYTHONPATH_DEFAULT=.*|PYISCSI_PYTHONPATH_DEFAULT=$(PRIVDIR)|' '$(DESTDIR)$(MODDIR)/module-setup.sh'
	find initiator boot -name '*.py' -exec install -D -m 0644 {} '$(DESTDIR)$(PRIVDIR)/{}' \;
	sed -e 's|@PYTHON@|$(PYTHON_HOST)|g' -e 's|@PRIVDIR@|$(PRIVDIR)|g' packaging/pyiscsi.in > '$(DESTDIR)$(PREFIX)/sbin/pyiscsi'
	chmod 0755 '$(DESTDIR)$(PREFIX)/sbin/pyiscsi'
	install -m 0644 packaging/pyiscsi.8 '$(DESTDIR)$(PREFIX)/share/man/man8/pyiscsi.8'

# build/pyiscsi_<version>_all.deb: debian/ with debhelper, built from a copy of the sources under build/deb so that
# the checkout gets no debian/pyiscsi, .debhelper or stamps; its version comes from debian/changelog. Rebuilt only
# when a source is newer than the .deb.
DEB_VERSION = $(shell sed -n '1s/^[^(]*(\([^)]*\)).*/\1/p' debian/changelog)
DEB_SOURCES = debian dracut initiator boot packaging Makefile README.md
DEB = build/pyiscsi_$(DEB_VERSION)_all.deb
deb: $(DEB)
$(DEB): $(shell find $(DEB_SOURCES) -type f ! -path '*/__pycache__/*' ! -name '*.pyc' 2>/dev/null)
	@command -v dpkg-buildpackage > /dev/null && command -v dh_python3 > /dev/null || { \
		echo "deb: installing Debian's packaging tools"; export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends dpkg-dev debhelper dh-python; }
	rm -rf build/deb && mkdir -p build/deb/pyiscsi-$(DEB_VERSION)
	tar -c --exclude=__pycache__ --exclude='*.pyc' $(DEB_SOURCES) | tar -x -C build/deb/pyiscsi-$(DEB_VERSION)
	cd build/deb/pyiscsi-$(DEB_VERSION) && dpkg-buildpackage -us -uc -b
	cp build/deb/pyiscsi_$(DEB_VERSION)_all.deb $@
	@echo "deb: $@"

# The code against Debian 12's own pyroute2 (0.7.2) and pyudev (0.24.0): a venv that sees the system's packages,
# with pyiscsi (no dependencies) and the test tools from PyPI; only the tests that touch pyroute2/pyudev run.
DISTRO_VENV := .venv-distro
DISTRO_TESTS = tests/boot/net $(wildcard tests/boot/test_live.py tests/boot/test_disk.py tests/boot/test_rootdev.py \
	tests/boot/test_agent*.py tests/boot/test_freeze*.py tests/boot/freeze)
$(DISTRO_VENV)/.stamp: pyproject.toml
	@test -x $(DISTRO_VENV)/bin/python || $(PYTHON_HOST) -m venv --system-site-packages $(DISTRO_VENV)
	$(DISTRO_VENV)/bin/python -m pip install -q --no-deps -e .
	$(DISTRO_VENV)/bin/python -m pip install -q 'pytest>=8' 'pytest-subprocess>=1.5' 'hypothesis>=6.100'
	@touch $@

test-distro: deps-apt $(DISTRO_VENV)/.stamp
	@$(DISTRO_VENV)/bin/python -c 'import sys, pyroute2, pyudev; \
		print("test-distro: pyroute2", pyroute2.__file__, "pyudev", pyudev.__version__); \
		sys.exit(not pyroute2.__file__.startswith("/usr/lib/python3/dist-packages/"))'
	$(DISTRO_VENV)/bin/pytest -p no:cacheprovider $(DISTRO_TESTS)

clean:
	rm -rf build .pytest_cache .ruff_cache .hypothesis
