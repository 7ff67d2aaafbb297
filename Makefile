# pyiscsi — the two commands a newcomer needs are `make demo` and `make test`; both install what they need.
SHELL := /bin/bash
PYTHON_HOST ?= /usr/bin/python3
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
DESTDIR ?=
PREFIX ?= /usr

.PHONY: deps deps-apt deps-venv deps-kernel test lint demo initramfs bench install clean

deps: deps-apt deps-venv deps-kernel

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

deps-kernel: deps-venv
	@if [ -f vm-tests/harness/kernel.py ]; then PYTHONPATH=vm-tests $(PY) -m harness.kernel fetch; fi

lint: deps-venv
	$(VENV)/bin/ruff check .

test: deps lint
	$(VENV)/bin/pytest $(PYTEST_ARGS)

demo: deps
	@if [ -f vm-tests/harness/demo.py ]; then PYTHONPATH=vm-tests $(PY) -m harness.demo; \
	else echo "demo: not built yet (issue 6)"; exit 1; fi

initramfs: deps
	@if [ -f vm-tests/harness/initramfs.py ]; then PYTHONPATH=vm-tests $(PY) -m harness.initramfs $(if $(KVER),--kver $(KVER)) $(if $(KERNEL),--kernel $(KERNEL)); \
	else echo "initramfs: not built yet (issue 6)"; exit 1; fi

bench: deps
	$(PY) -m bench

# The wheel is built by the venv's pip (pyproject needs setuptools>=77; Debian 12's is 66), then unpacked for the
# host's python3 where Debian keeps modules ($(PREFIX)/lib/python3/dist-packages; pip --prefix would say local/).
PYDIR = $(DESTDIR)$(PREFIX)/lib/python3/dist-packages
install: deps-venv
	install -d $(DESTDIR)$(PREFIX)/lib/dracut/modules.d/95pyiscsi $(DESTDIR)$(PREFIX)/bin
	cp -a dracut/95pyiscsi/. $(DESTDIR)$(PREFIX)/lib/dracut/modules.d/95pyiscsi/
	rm -rf build/wheel && $(PY) -m pip wheel -q --no-deps -w build/wheel .
	$(PYTHON_HOST) -m pip install -q --no-deps --no-compile --upgrade --target '$(PYDIR)' build/wheel/pyiscsi-*.whl
	mv '$(PYDIR)/bin/pyiscsi' $(DESTDIR)$(PREFIX)/bin/pyiscsi && rmdir '$(PYDIR)/bin'

clean:
	rm -rf build .pytest_cache .ruff_cache .hypothesis
