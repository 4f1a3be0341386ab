/* stress_forever: the stress guest's workload (stress.c) in rounds that never end: four
 * preemptive worker threads (PIT at 10 kHz) each do ITER racy increments of a shared counter;
 * when all are done the main thread checks their checksums, increments `rounds_done` (its one
 * write per round), prints "round <n> counter <c> switches <s>", and restarts them. It runs
 * until the machine is stopped (recorder: RequestStop, `vmrr record` Ctrl-C or
 * --max-instructions); exit 2 a worker's checksum was wrong, 4 workers not done after 200000
 * ticks of one round. A round is ~0.17 G instructions (about 2-3 s of replay on vmrr), so
 * `rounds_done` is a guest variable written regularly but seconds apart: what
 * bench/timetravel watches going backwards. */
#define STRESS_FOREVER 1
#define ITER 1000000u
#include "stress.c"
