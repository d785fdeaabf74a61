# qvl: one Makefile.  `make` builds lib/libqvl.a and bin/qvl-*; `make check` runs every test
# and ends with "N passed, N failed"; `make demo` runs the pipeline on examples/.
#
# Sources are found by name: lib/*.c go into the library, cmd/qvl-*.c are programs (the other
# cmd/*.c form build/cmd/libcmd.a, from which each program takes what it uses: util.c all of
# them, conversation.c qvl-decode), tests/test_*.c are unit tests (built with
# AddressSanitizer and UBSan), tests/*.sh are tests of the programs.

# Build in parallel on every core unless told otherwise.
MAKEFLAGS += -j$(shell nproc 2>/dev/null || echo 2)

CC      ?= cc
PREFIX  ?= /usr/local
ARCH    ?= -march=native
OPT     ?= -O2
PKGS     = openblas libpng libjpeg jansson libutf8proc
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
WARN     = -Wall -Wextra -Werror
CFLAGS  ?= $(OPT) -g
QVL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(ARCH) $(PKG_CFLAGS) -pthread
LDLIBS   = $(PKG_LIBS) -lm -pthread
# oneDNN (Debian libdnnl-dev) gives the BF16 products that qvl's own AMX kernels do not
# take (AVX512-BF16 without AMX, attention's output, q8/q4 tiles widened to BF16);
# without it OpenBLAS does those.
ifneq ($(wildcard /usr/include/dnnl.h),)
ifneq ($(NO_DNNL),1)
QVL_CFLAGS += -DQVL_HAVE_DNNL
LDLIBS   += -ldnnl
endif
endif
SAN      = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

LIB_SRC  = $(sort $(wildcard lib/*.c))
CMD_SRC  = $(sort $(wildcard cmd/qvl-*.c))
CMD_COMMON = $(filter-out $(CMD_SRC),$(sort $(wildcard cmd/*.c)))
TEST_SRC = $(sort $(wildcard tests/test_*.c))
TEST_SH  = $(filter-out tests/lib.sh,$(sort $(wildcard tests/*.sh)))
BENCH_SRC = $(sort $(wildcard bench/*.c))
FUZZ_SRC = $(sort $(wildcard tests/fuzz/fuzz_*.c))

LIB_OBJ  = $(LIB_SRC:%.c=build/%.o)
COMMON_OBJ = $(CMD_COMMON:%.c=build/%.o)
PROGS    = $(CMD_SRC:cmd/%.c=bin/%)
ASAN_LIB_OBJ = $(LIB_SRC:%.c=build/asan/%.o)
TESTS    = $(TEST_SRC:tests/%.c=build/asan/tests/%)
BENCHES  = $(BENCH_SRC:bench/%.c=build/bench/%)
REPLAYS  = $(FUZZ_SRC:tests/fuzz/fuzz_%.c=build/asan/fuzz/replay_%)
FUZZERS  = $(FUZZ_SRC:tests/fuzz/fuzz_%.c=build/fuzz/fuzz_%)

all: lib/libqvl.a $(PROGS)

lib/libqvl.a: $(LIB_OBJ)
	@rm -f $@
	@echo "  AR      $@"
	@ar rcs $@ $(LIB_OBJ)

# vmath's polynomials are written to fuse: a * b + c in one rounding (FMA) is more exact and
# half the instructions (attention over 2520 patches: e^x 17 -> 8 % of its time), and ISO
# C (-std=c11) forbids the fusion unless asked.
%/lib/vmath.o: QVL_CFLAGS += -ffp-contract=fast

build/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(QVL_CFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

build/cmd/libcmd.a: $(COMMON_OBJ)
	@rm -f $@
	@ar rcs $@ $(COMMON_OBJ)

bin/%: build/cmd/%.o build/cmd/libcmd.a lib/libqvl.a
	@mkdir -p bin
	@echo "  LD      $@"
	@$(CC) $(CFLAGS) -o $@ $< build/cmd/libcmd.a lib/libqvl.a $(LDFLAGS) $(LDLIBS)

build/asan/libqvl.a: $(ASAN_LIB_OBJ)
	@rm -f $@
	@ar rcs $@ $(ASAN_LIB_OBJ)

build/asan/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC asan $<"
	@$(CC) $(QVL_CFLAGS) $(CFLAGS) $(SAN) -MMD -MP -c -o $@ $<

build/asan/tests/%: build/asan/tests/%.o build/asan/libqvl.a
	@echo "  LD asan $@"
	@$(CC) $(CFLAGS) $(SAN) -o $@ $< build/asan/libqvl.a $(LDFLAGS) $(LDLIBS)

# Fuzz targets: `make check` replays their corpora (tests/fuzz/NAME/) under the sanitizers;
# `make fuzz` builds the libFuzzer binaries (clang) for build/fuzz/fuzz_NAME tests/fuzz/NAME.
build/asan/fuzz/replay_%: build/asan/tests/fuzz/fuzz_%.o build/asan/tests/fuzz/replay.o build/asan/libqvl.a
	@mkdir -p $(dir $@)
	@$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(LDFLAGS) $(LDLIBS)

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(LIB_SRC)
	@mkdir -p $(dir $@)
	@echo "  FUZZ    $@"
	@clang $(QVL_CFLAGS) -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -o $@ $< $(LIB_SRC) $(LDLIBS)

fuzz: $(FUZZERS)

build/bench/%: bench/%.c lib/libqvl.a
	@mkdir -p build/bench
	$(CC) $(QVL_CFLAGS) $(CFLAGS) -o $@ $< lib/libqvl.a $(LDFLAGS) $(LDLIBS)

# The unit tests run under the sanitizers; the shell tests drive the programs in bin/.
check: all $(TESTS) $(REPLAYS)
	@tests/run $(TESTS) $(TEST_SH)

# Slow tests (3B-shaped models, long fuzz replays) live here, out of CI's 15 minutes.
check-long: all $(TESTS) $(REPLAYS)
	@QVL_LONG=1 tests/run $(TESTS) $(TEST_SH) $(sort $(wildcard tests/long/*.sh))

# The pipeline on the tiny model under valgrind memcheck: zero errors, zero leaks.
check-valgrind: all
	@tests/run tests/long/valgrind.sh

bench: all $(BENCHES)
	+@bench/run

# Installs the Debian packages the build and tests need (as root), or prints the command.
DEB_PKGS = build-essential pkg-config libpng-dev libjpeg62-turbo-dev libopenblas-dev \
	libjansson-dev libutf8proc-dev libdnnl-dev clang libclang-rt-14-dev valgrind parallel python3-numpy python3-pil poppler-utils
deps:
	@missing=$$(for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -z "$$missing" ]; then echo "deps: all installed"; \
	elif [ "$$(id -u)" = 0 ]; then \
		echo "deps: installing $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else echo "deps: run as root: apt-get install $$missing"; exit 1; fi

demo: deps all
	@examples/demo.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
		$(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)$(PREFIX)/share/man/man7
	install -m 755 $(PROGS) $(DESTDIR)$(PREFIX)/bin
	install -m 644 man/man1/*.1 $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 644 man/man5/*.5 $(DESTDIR)$(PREFIX)/share/man/man5
	install -m 644 man/man7/*.7 $(DESTDIR)$(PREFIX)/share/man/man7
	install -d $(DESTDIR)$(PREFIX)/share/qvl/examples
	install -m 644 examples/ocr.mk $(DESTDIR)$(PREFIX)/share/qvl/examples

clean:
	rm -rf build bin lib/libqvl.a

-include $(wildcard build/*/*.d build/*/*/*.d build/*/*/*/*.d)

.PHONY: all check check-long check-valgrind bench deps demo install clean fuzz
.SECONDARY:
