# The two commands that matter: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LISTEN ?= 127.0.0.1:8080
STATE ?= state
# The demo runs behind a 4-port demo KVM switch (docs/switch.md); DEMO_CONFIG= for one machine.
DEMO_CONFIG ?= scripts/demo.toml

.PHONY: demo test lint format typecheck system-deps system-test image bench clean

$(STAMP): pyproject.toml scripts/bootstrap-venv
	@PYTHON=$(PYTHON) VENV=$(VENV) sh scripts/bootstrap-venv
	@touch $(STAMP)

# make demo TARGET=qemu: two SeaBIOS guests under QEMU behind the qemu switch (docs/qemu.md).
TARGET ?= demo
ifeq ($(TARGET),qemu)
DEMO_CONFIG := scripts/demo-qemu.toml
endif

demo: $(STAMP)
	@sh scripts/system-deps --demo
	@if [ "$(TARGET)" = qemu ] && ! command -v qemu-system-x86_64 >/dev/null 2>&1; then \
		echo "make demo TARGET=qemu needs qemu-system-x86_64:" \
			"sudo apt-get install qemu-system-x86 seabios" >&2; exit 1; fi
	$(PY) -m appliance serve --target $(TARGET) --listen $(LISTEN) --state-dir $(STATE) \
		$(if $(DEMO_CONFIG),--config $(DEMO_CONFIG))

test: $(STAMP) system-deps lint
	$(PY) -m pytest -q -ra $(PYTEST_ARGS)
	$(MAKE) system-test

system-deps:
	@sh scripts/system-deps

# Boots the appliance image under QEMU (docs/system-test.md); skips with a message when it cannot.
system-test: $(STAMP)
	@sh scripts/system-test $(SYSTEST_ARGS)

# The SD-card / VM image (docs/image.md): make image FLAVOUR=rpi-arm64|qemu-x86_64 [IMAGE_OUT=dir]
FLAVOUR ?= rpi-arm64
IMAGE_OUT ?= build/image-$(FLAVOUR)
image: $(STAMP)
	sudo=; [ "$$(id -u)" = 0 ] || sudo=sudo; $$sudo image/build $(FLAVOUR) $(IMAGE_OUT)

# Python scripts installed without a .py suffix (ruff finds them through extend-include).
PY_SCRIPTS := image/flash image/rootfs/usr/lib/ipkvm/growdata systemd/firstboot systemd/gadget-from-config

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/lint-imports
	$(MAKE) --no-print-directory typecheck

format: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

typecheck: $(STAMP)
	$(PY) -m mypy
	@for f in $(PY_SCRIPTS); do echo "mypy $$f"; $(PY) -m mypy --strict --scripts-are-modules $$f || exit 1; done

bench: $(STAMP)
	$(PY) bench/hid.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
