# linjail — see README.md.  Every target is idempotent and quiet when there is
# nothing to do.
#   make demo | make test      run from the checkout (.venv), nothing installed outside it
#   make install [PREFIX=/usr/local] [PYTHON=/usr/bin/python3] [DESTDIR=]
#   make uninstall [PREFIX=...]  removes exactly what make install recorded
#   make deb | make wheel      build/linjail_VERSION_amd64.deb, build/linjail-VERSION-*.whl
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip -q --disable-pip-version-check
REAPER := src/linjail/reaper/linjail-reaper
# RUN_DEBS: what an installed linjail needs (the .deb's Depends); DEBS: also what
# building, the tests and the demo need (CI installs these); nftables, lintian, zsh: the tests';
# podman, containerd: the OCI clients linjail-oci is tested under (issue 14)
RUN_DEBS := python3 libseccomp2
DEBS := musl-tools $(RUN_DEBS) iproute2 procps busybox debootstrap curl nftables lintian zsh \
	podman containerd
BENCH_DEBS := bubblewrap runc systemd-container util-linux
DEBS_STAMP := $(VENV)/.debs
PY_STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.test-installed
# an installed linjail runs on the distribution's own interpreter, never a
# per-user one (pyenv under /root is unreachable for other users)
PREFIX ?= /usr/local
PYTHON ?= /usr/bin/python3
SYSCONFDIR ?= /etc
INSTALL_VARS = PREFIX=$(PREFIX) PYTHON=$(PYTHON) SYSCONFDIR=$(SYSCONFDIR) DESTDIR=$(DESTDIR) \
	$(if $(SYSTEMDUNITDIR),SYSTEMDUNITDIR=$(SYSTEMDUNITDIR))

# the OCI runtime-tools validation suite (issue 14): its source, kept outside the repository
# with its vendored Go dependencies and the build.sh beside it (../../tools/oci-validation/,
# README there), and where it is built (reused; ~1 min the first time)
OCI_RUNTIME_TOOLS ?= /work/shared/external/runtime-tools
OCI_VALIDATION ?= /var/tmp/linjail-oci-validation
LINJAIL_OCI ?= $(CURDIR)/$(VENV)/sbin/linjail-oci
OCI_ENV = OCI_RUNTIME_TOOLS=$(OCI_RUNTIME_TOOLS) OCI_VALIDATION=$(OCI_VALIDATION)

.PHONY: install uninstall dev launchers demo test fuzz bench deb wheel oci-conformance

# $(call need-debs,PACKAGES): apt-get install those that are missing
need-debs = missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | \
	  grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "apt-get install $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# the checkout's own commands, in .venv/sbin (what make test and make demo run)
dev: $(DEBS_STAMP) $(PY_STAMP) $(REAPER) launchers

launchers: $(PY_STAMP)
	@sh tools/mklaunchers.sh $(VENV)/sbin $$(readlink -f $(PY)) $(CURDIR)/src

# a copy that no longer needs the checkout (tools/install.sh says what goes where)
install:
	@$(call need-debs,musl-tools $(RUN_DEBS))
	@$(MAKE) -s $(REAPER)
	@$(INSTALL_VARS) sh tools/install.sh

uninstall:
	@PREFIX=$(PREFIX) DESTDIR=$(DESTDIR) sh tools/uninstall.sh

# build/linjail_VERSION_amd64.deb (tools/mkdeb.sh, packaging/deb/)
deb:
	@$(call need-debs,musl-tools)
	@$(MAKE) -s $(REAPER)
	@sh tools/mkdeb.sh build

# build/linjail-VERSION-py3-none-linux_x86_64.whl, the reaper compiled by setup.py
wheel: $(PY_STAMP)
	@$(PY) -m pip wheel -q --no-deps -w build . 2>&1 | grep -v '^WARNING: Location' || true
	@ls build/linjail-*.whl

$(DEBS_STAMP): Makefile
	@$(call need-debs,$(DEBS))
	@mkdir -p $(VENV) && touch $@

$(PY_STAMP): pyproject.toml
	@[ -x $(PY) ] || python3 -m venv $(VENV)
	@$(PIP) install -e . 2>&1 | grep -v '^WARNING: Location' || true
	@$(PY) -c 'import linjail' && touch $@

$(REAPER): src/linjail/reaper/reaper.c
	@musl-gcc -static -Os -s -Wall -Werror -o $@ $<

$(TEST_STAMP): $(PY_STAMP) pyproject.toml
	@$(PIP) install -e '.[test]' 2>&1 | grep -v '^WARNING: Location' || true
	@touch $@

test: dev $(TEST_STAMP)
	$(VENV)/bin/mypy
	$(OCI_ENV) $(PY) -m pytest -q -p no:cacheprovider tests

# the suite's programs one by one, runc beside linjail-oci, in one table (tools/oci_conformance.py)
oci-conformance: dev
	@flock $(OCI_VALIDATION).lock $(OCI_RUNTIME_TOOLS)/../../tools/oci-validation/build.sh \
	  $(OCI_VALIDATION) >/dev/null
	@$(PY) tools/oci_conformance.py --suite $(OCI_VALIDATION) --runtime runc=runc \
	  --runtime linjail-oci=$(LINJAIL_OCI)

# the fuzzer alone, longer: make fuzz CASES=3000 SEED=409 (make test runs 400 of seed 16)
CASES ?= 3000
SEED ?= 16
fuzz: dev $(TEST_STAMP)
	LINJAIL_FUZZ_CASES=$(CASES) LINJAIL_FUZZ_SEED=$(SEED) $(PY) -m pytest -q -p no:cacheprovider tests/fuzz

demo: dev
	@bash demo/demo.sh

bench: dev
	@$(call need-debs,$(BENCH_DEBS))
	@$(PY) -c 'import matplotlib' 2>/dev/null || $(PIP) install -e '.[bench]' 2>&1 | grep -v '^WARNING: Location' || true
	$(PY) bench/bench.py $(BENCH_ARGS)
