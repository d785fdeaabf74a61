/* test_cpu: the CPU probe.  AMX is used only when its tile instructions run: on a CPU
 * without AMX the probe's instructions fault, the fault is caught, the process goes on
 * and its own SIGILL and SIGSEGV handlers are back in place. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "../lib/cpu.h"
#include "test.h"

static void
our_handler(int sig)
{
	(void)sig;
}

int
main(int argc, char **argv)
{
	const qvl_cpu *cpu;
	struct sigaction mine, now;
	int runs;

	TEST_INIT(argc, argv);
	memset(&mine, 0, sizeof mine);
	mine.sa_handler = our_handler;
	sigemptyset(&mine.sa_mask);
	sigaction(SIGILL, &mine, NULL);
	sigaction(SIGSEGV, &mine, NULL);

	cpu = qvl_cpu_get();
	runs = qvl_cpu_amx_runs();
	if (test_verbose)
		printf("cpu %s: level %s, amx listed %d, usable %d, tile instructions %s\n",
		    cpu->name, qvl_cpu_level_name(cpu->level), cpu->amx_listed, cpu->amx,
		    runs ? "run" : "fault (caught)");
	sigaction(SIGILL, NULL, &now);
	CHECK(now.sa_handler == our_handler, "the caller's SIGILL handler is back after the probe");
	sigaction(SIGSEGV, NULL, &now);
	CHECK(now.sa_handler == our_handler, "the caller's SIGSEGV handler is back after the probe");
	if (!cpu->amx_listed)
		CHECK(!runs && !cpu->amx, "no AMX listed: tile instructions fault, caught; AMX off");
	if (cpu->amx)
		CHECK(runs, "AMX usable: tile instructions run");
	CHECK(!cpu->amx || cpu->amx_listed, "AMX used only where cpuid lists it");
	/* A second probe after a caught fault works the same. */
	CHECK(qvl_cpu_amx_runs() == runs, "the probe repeats");
	return TEST_DONE();
}
