# The README's commands. Thin on purpose: configure/build/test live in CMake (CMakePresets.json).
#   make demo   install what is missing, build, ask the bundled demo model about a bundled map (DEMO_MODEL,
#               DEMO_IMAGE and DEMO_QUESTION choose others)
#   make test   install what is missing, build, run every test (CI runs exactly this)
#   make build  build only
JOBS ?= $(shell nproc)
BUILD_DIR ?= build
VOLT := $(BUILD_DIR)/bin/volt
DEMO_MODEL ?= models/volt-demo-vl
DEMO_IMAGE ?= models/volt-demo-vl/samples/map.png
DEMO_QUESTION ?= Describe the map.

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
	@echo "Model: $(DEMO_MODEL)"
	@echo "By default that is volt-demo-vl, bundled with the repository: a tiny model with MiniMax-VL-01's exact"
	@echo "architecture (CLIP ViT with any-resolution tiles, MLP projector, lightning/softmax-attention MoE backbone)"
	@echo "trained for about a quarter of an hour on synthetic maps and documents. It demonstrates the pipeline; it is"
	@echo "not an assistant: it answers a fixed set of questions about such maps and tables, and is often wrong (its"
	@echo "measured accuracy is in models/volt-demo-vl/README.md). For real answers, download MiniMaxAI/MiniMax-VL-01"
	@echo "(about 900 GB) and run:  make demo DEMO_MODEL=/path/to/MiniMax-VL-01"
	@echo "The sample map was held out from training and picked as one the demo model describes correctly."
	@echo
	@$(VOLT) info --model $(DEMO_MODEL)
	@echo
	@echo "$$ volt run --model $(DEMO_MODEL) --image $(DEMO_IMAGE) --prompt '$(DEMO_QUESTION)' --temperature 0"
	@$(VOLT) run --model $(DEMO_MODEL) --image $(DEMO_IMAGE) --prompt "$(DEMO_QUESTION)" --temperature 0

clean:
	rm -rf $(BUILD_DIR)
