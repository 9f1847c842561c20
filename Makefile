# The README's commands. Thin on purpose: configure/build/test live in CMake (CMakePresets.json).
#   make demo   install what is missing, build, run the CLI on the bundled model
#   make test   install what is missing, build, run every test (CI runs exactly this)
#   make build  build only
JOBS ?= $(shell nproc)
BUILD_DIR ?= build
VOLT := $(BUILD_DIR)/bin/volt
DEMO_MODEL ?= tests/data/tiny-chat

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
	@echo "The embedded demo model (a tiny MiniMax-VL trained on synthetic maps and documents) has not landed yet."
	@echo "Until it does, this runs the pipeline on the test model in $(DEMO_MODEL): the real MiniMax-Text-01"
	@echo "architecture (lightning + softmax layers, MoE) with RANDOM weights, a small trained tokenizer and"
	@echo "MiniMax-VL-01's chat template. Everything below is computed for real; the answer is noise because the"
	@echo "weights are random. Point --model at a MiniMax-Text-01 / VL-01 download for real answers."
	@echo
	@$(VOLT) info --model $(DEMO_MODEL)
	@echo
	@echo "$$ volt run --model $(DEMO_MODEL) --doc tests/data/documents/three_pages.pdf --prompt 'Which town is largest?' -v"
	@$(VOLT) run --model $(DEMO_MODEL) --doc tests/data/documents/three_pages.pdf --prompt "Which town is largest?" \
	    --temperature 0 --max-new-tokens 24 -v

clean:
	rm -rf $(BUILD_DIR)
