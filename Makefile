# linjail — see README.md.  Every target is idempotent and quiet when there is
# nothing to do.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip -q --disable-pip-version-check
SBIN := /usr/local/sbin
REAPER := src/linjail/reaper/linjail-reaper
DEBS := musl-tools iproute2 libseccomp2 procps busybox debootstrap curl
BENCH_DEBS := bubblewrap runc systemd-container util-linux
DEBS_STAMP := $(VENV)/.debs
PY_STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.test-installed

.PHONY: install demo test bench links boot

install: $(DEBS_STAMP) $(PY_STAMP) $(REAPER) links boot

# boot integration: the SysV script and the systemd unit call jailctl (SPEC §8)
boot:
	@cmp -s etc/init.d/jail /etc/init.d/jail || install -m755 etc/init.d/jail /etc/init.d/jail
	@mkdir -p /etc/systemd/system
	@cmp -s etc/systemd/jail.service /etc/systemd/system/jail.service || \
	  install -m644 etc/systemd/jail.service /etc/systemd/system/jail.service
	@for m in man/*.[0-9]; do \
	  d=/usr/local/share/man/man$${m##*.}; mkdir -p $$d; \
	  cmp -s $$m $$d/$${m#man/} || install -m644 $$m $$d/; \
	done

$(DEBS_STAMP): Makefile
	@missing=$$(for p in $(DEBS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "apt-get install $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@mkdir -p $(VENV) && touch $@

$(PY_STAMP): pyproject.toml
	@[ -x $(PY) ] || python3 -m venv $(VENV)
	@$(PIP) install -e . 2>&1 | grep -v '^WARNING: Location' || true
	@$(PY) -c 'import linjail' && touch $@

$(REAPER): src/linjail/reaper/reaper.c
	@musl-gcc -static -Os -s -Wall -Werror -o $@ $<

links: $(PY_STAMP)
	@sh tools/mklaunchers.sh $(VENV)/sbin $$(readlink -f $(PY)) $(CURDIR)/src
	@for t in jail jls jexec jailctl; do \
	  [ "$$(readlink $(SBIN)/$$t)" = "$(CURDIR)/$(VENV)/sbin/$$t" ] || ln -sf $(CURDIR)/$(VENV)/sbin/$$t $(SBIN)/$$t; \
	done

$(TEST_STAMP): $(PY_STAMP) pyproject.toml
	@$(PIP) install -e '.[test]' 2>&1 | grep -v '^WARNING: Location' || true
	@touch $@

test: install $(TEST_STAMP)
	$(VENV)/bin/mypy
	$(PY) -m pytest -q -p no:cacheprovider tests

demo: install
	@bash demo/demo.sh

bench: install
	@missing=$$(for p in $(BENCH_DEBS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi
	@$(PY) -c 'import matplotlib' 2>/dev/null || $(PIP) install -e '.[bench]' 2>&1 | grep -v '^WARNING: Location' || true
	$(PY) bench/bench.py $(BENCH_ARGS)
