# The README's commands. Thin on purpose: configure/build/test live in CMake (CMakePresets.json).
#   make demo   install what is missing, build, run the CLI on the bundled model
#   make test   install what is missing, build, run every test (CI runs exactly this)
#   make build  build only
JOBS ?= $(shell nproc)
BUILD_DIR ?= build
VOLT := $(BUILD_DIR)/bin/volt
DEMO_MODEL ?= tests/data/tiny-text

.PHONY: setup configure build test demo clean
setup:
	@bash scripts/setup-deps.sh

configure:
	@cmake --preset default -B $(BUILD_DIR) >/dev/null

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

test: setup build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --no-tests=error

demo: setup build
	@echo "== Volt demo =="
	@echo "The embedded demo model (a tiny MiniMax-VL trained on synthetic maps) has not landed yet."
	@echo "Until it does, this describes the small test model in $(DEMO_MODEL): a MiniMax-Text-01 of the real"
	@echo "architecture with random weights, made by tools/make_text_fixture.py."
	@echo
	@$(VOLT) info --model $(DEMO_MODEL)

clean:
	rm -rf $(BUILD_DIR)
