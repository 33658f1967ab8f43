# The two commands of the README:
#   make run   — set up what is missing, build, run the sample on two streams, write out.mp4
#   make test  — set up what is missing, build, run every test
.PHONY: setup build run test bench clean

setup:
	@bash scripts/setup.sh

build: setup
	swift build -c release --product imagedata-multistream

run: build
	.build/release/imagedata-multistream -i media/sample_720p_h264.mp4 media/sample_h265.mp4 -o out.mp4

test: setup
	.deps/venv/bin/python tests/python/test_model_vs_opencv.py
	.deps/venv/bin/python tests/python/test_int8_setup_check.py
	swift build --build-tests
	swift test --skip-build --skip TributaryServiceTests --skip SoakTests
	# The minute-long soak takes both cores: alone, so the others' time limits hold.
	swift test --skip-build --filter SoakTests
	# The service's tests start servers and processes and measure rates: one at a time, alone.
	swift test --skip-build --filter TributaryServiceTests --no-parallel
	# The parsers under libFuzzer, 30 s each (docs/reliability.md, "Fuzzing").
	bash scripts/fuzz.sh build
	bash scripts/fuzz.sh run 30

bench: setup
	swift build -c release --product tributary-benchmark
	.build/release/tributary-benchmark

clean:
	rm -rf .build out.mp4
