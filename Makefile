# stasis — build, test and demo.  `make` builds build/stasis; `make check`
# runs every test (as a normal user: the unit tests only, the others need
# root); `make demo` shows a live checkpoint/restore.

CC       ?= gcc
BUILD    := build
DEB_DEPS := protobuf-c-compiler libprotobuf-c-dev libxxhash-dev libmnl-dev pkg-config
CFLAGS   ?= -O2 -g
CFLAGS   += -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers \
	    -D_GNU_SOURCE -Isrc/include -I$(BUILD)/proto -MMD -MP
LDLIBS   := -lprotobuf-c -lxxhash -lmnl

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

check: all
	@bash tests/run.sh

demo: all
	@bash tests/demo.sh

bench: all
	@bash bench/run.sh

format:
	clang-format -i $$(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c' 'tests/*.h' 'bench/*.c')

clean:
	rm -rf $(BUILD)

.PHONY: all deps check demo bench format clean
.SECONDARY: $(PROTO_C)
-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
