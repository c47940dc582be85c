# stasis — build, test and demo.  `make` builds build/stasis; `make check`
# runs every test (as a normal user: the unit tests only, the others need
# root); `make demo` shows a live checkpoint/restore.

CC       ?= gcc
BUILD    := build
DEB_DEPS := protobuf-c-compiler libprotobuf-c-dev libxxhash-dev libmnl-dev libnftables-dev libnftnl-dev pkg-config
CFLAGS   ?= -O2 -g
override CFLAGS += -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers \
	    -D_GNU_SOURCE -Isrc/include -I$(BUILD)/proto -MMD -MP
# libnftables is opened with dlopen when first used (src/util/nft_load.c)
LDLIBS   := -lprotobuf-c -lxxhash -lmnl -lnftnl

PROTOS   := $(wildcard images/*.proto)
PROTO_C  := $(patsubst images/%.proto,$(BUILD)/proto/%.pb-c.c,$(PROTOS))
PROTO_O  := $(PROTO_C:.c=.o)
LIB_SRC  := $(filter-out src/main.c,$(wildcard src/*/*.c src/*.c))
LIB_O    := $(patsubst %.c,$(BUILD)/%.o,$(LIB_SRC))
MAIN_O   := $(BUILD)/src/main.o
SCEN_SRC := $(wildcard tests/scenarios/*.c)
SCEN_BIN := $(patsubst tests/scenarios/%.c,$(BUILD)/tests/%,$(SCEN_SRC))
TOOL_SRC := $(wildcard tests/tools/*.c)
TOOL_BIN := $(patsubst tests/tools/%.c,$(BUILD)/tools/%,$(TOOL_SRC))
UNIT_SRC := $(wildcard tests/unit/*.c)
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/unit/%,$(UNIT_SRC))

all: deps $(BUILD)/stasis $(SCEN_BIN) $(UNIT_BIN) $(TOOL_BIN)

# Install missing Debian build dependencies (as root), or say how to.
deps:
	@missing=""; for p in $(DEB_DEPS); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "installing build dependencies:$$missing"; \
			(apt-get install -y -qq $$missing || (apt-get update -qq && apt-get install -y -qq $$missing)) >/dev/null || exit 1; \
		else \
			echo "missing build dependencies; run: sudo apt-get install -y$$missing"; exit 1; \
		fi; \
	fi

$(BUILD)/proto/%.pb-c.c $(BUILD)/proto/%.pb-c.h: images/%.proto | deps
	@mkdir -p $(BUILD)/proto
	protoc-c --proto_path=images --c_out=$(BUILD)/proto $<

$(BUILD)/proto/%.pb-c.o: $(BUILD)/proto/%.pb-c.c $(PROTO_C)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/src/%.o: src/%.c $(PROTO_C)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/libstasis.a: $(LIB_O) $(PROTO_O)
	ar rcs $@ $^

$(BUILD)/stasis: $(MAIN_O) $(BUILD)/libstasis.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tools/%: tests/tools/%.c
	@mkdir -p $(BUILD)/tools
	$(CC) -O1 -g -std=gnu11 -Wall -Wextra -D_GNU_SOURCE -o $@ $<

$(BUILD)/tests/%: tests/scenarios/%.c tests/scenarios/scenario.h
	@mkdir -p $(BUILD)/tests
	$(CC) -O1 -g -std=gnu11 -Wall -Wextra -Wno-unused-parameter -D_GNU_SOURCE -o $@ $< -lpthread

$(BUILD)/unit/%: tests/unit/%.c $(BUILD)/libstasis.a
	@mkdir -p $(BUILD)/unit
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libstasis.a $(LDLIBS)

check: all fuzz-replay
	@bash tests/run.sh

# The fault loop (tests/suites/fault.sh) with every point failed the 1st,
# 2nd and 3rd time it is reached; make check runs the 1st only.
check-faults: all
	@STASIS_FAULTS_ALL=1 bash tests/run.sh fault/

# Fuzzing the image reader and loader (tests/fuzz/): `make fuzz` runs the
# libFuzzer target (clang, ASan+UBSan) for FUZZ_SECONDS on one core;
# `make fuzz-replay` (part of check) runs the corpus and every crash kept
# so far through a gcc ASan+UBSan build of the same target.
FUZZ_SECONDS ?= 600
FUZZ_FLAGS   ?=
FUZZ_CC      ?= clang-14
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_BUILD   := $(BUILD)/fuzz-clang
ASAN_BUILD   := $(BUILD)/asan
FUZZ_DIRS    := tests/fuzz/corpus tests/fuzz/crashes

fuzz-lib:
	@$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) CC=$(FUZZ_CC) \
		CFLAGS="-O1 -g $(FUZZ_SAN) -fsanitize=fuzzer-no-link" $(FUZZ_BUILD)/libstasis.a

asan-lib:
	@$(MAKE) --no-print-directory BUILD=$(ASAN_BUILD) CC=gcc \
		CFLAGS="-O1 -g $(FUZZ_SAN)" $(ASAN_BUILD)/libstasis.a

$(BUILD)/fuzz/image_fuzz: tests/fuzz/image_fuzz.c fuzz-lib
	@mkdir -p $(BUILD)/fuzz
	$(FUZZ_CC) -O1 -g $(FUZZ_SAN) -fsanitize=fuzzer -std=gnu11 -D_GNU_SOURCE -Isrc/include \
		-I$(FUZZ_BUILD)/proto -o $@ $< $(FUZZ_BUILD)/libstasis.a $(LDLIBS)

$(BUILD)/fuzz/image_replay: tests/fuzz/replay.c tests/fuzz/image_fuzz.c asan-lib
	@mkdir -p $(BUILD)/fuzz
	gcc -O1 -g $(FUZZ_SAN) -std=gnu11 -Wall -Wextra -Wno-unused-parameter -D_GNU_SOURCE \
		-Isrc/include -I$(ASAN_BUILD)/proto -o $@ tests/fuzz/replay.c tests/fuzz/image_fuzz.c \
		$(ASAN_BUILD)/libstasis.a $(LDLIBS)

fuzz: $(BUILD)/fuzz/image_fuzz
	@mkdir -p $(BUILD)/fuzz/corpus tests/fuzz/crashes
	$(BUILD)/fuzz/image_fuzz -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -timeout=10 \
		-rss_limit_mb=1024 -print_final_stats=1 -artifact_prefix=tests/fuzz/crashes/ $(FUZZ_FLAGS) \
		$(BUILD)/fuzz/corpus tests/fuzz/corpus

# Fold what `make fuzz` found into the committed corpus, minimised.
fuzz-merge: $(BUILD)/fuzz/image_fuzz
	$(BUILD)/fuzz/image_fuzz -merge=1 -max_len=65536 tests/fuzz/corpus $(BUILD)/fuzz/corpus

$(BUILD)/fuzz/seed: tests/fuzz/seed.c $(BUILD)/libstasis.a
	@mkdir -p $(BUILD)/fuzz
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libstasis.a $(LDLIBS)

# Remake the seeds of tests/fuzz/corpus from the suite's scenarios (root).
fuzz-seed: all $(BUILD)/fuzz/seed
	@bash tests/fuzz/seed.sh

fuzz-replay: $(BUILD)/fuzz/image_replay
	@ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		timeout -k 5 60 $(BUILD)/fuzz/image_replay $(FUZZ_DIRS)

demo: all
	@bash tests/demo.sh

bench: all
	@bash bench/run.sh

bench-net: all
	@bash bench/net.sh

# a container (5 processes, 10 mounts, a veth) next to the same tree without namespaces
bench-container: all
	@bash bench/container.sh

# The memory figures with an 8 GiB target (about 17 GiB of free memory; not in check).
bench-8g: all
	@bash bench/run.sh big

# memory only, variants interleaved (bench/mem.sh); bench-mem-8g: 8 GiB
bench-mem: all
	@bash bench/mem.sh 1024

bench-mem-8g: all
	@REPS=$${REPS:-3} bash bench/mem.sh 8192

# Longer runs outside make check: stasis killed with SIGKILL at many
# moments of dumps of a 50-thread process and of a busy one with TCP,
# 1,000 checkpoint/restore cycles (tests/suites/soak.sh).  In a network
# namespace of their own when one can be made: their lock tables come and
# go for many minutes, and other test runs on the machine check that the
# host has none left (the runner's leftover check is host-wide).
soak: all
	@if unshare -n true 2>/dev/null; then \
		STASIS_SOAK=1 unshare -n sh -c 'ip link set lo up && exec bash tests/run.sh soak/'; \
	else \
		STASIS_SOAK=1 bash tests/run.sh soak/; \
	fi

format:
	clang-format -i $$(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c' 'tests/*.h' 'bench/*.c')

clean:
	rm -rf $(BUILD)

.PHONY: all deps check check-faults demo bench bench-net bench-container bench-8g bench-mem bench-mem-8g soak format clean fuzz fuzz-lib asan-lib fuzz-merge fuzz-replay fuzz-seed
.SECONDARY: $(PROTO_C)
-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
