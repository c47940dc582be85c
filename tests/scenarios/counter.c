// SPDX-License-Identifier: MIT
/*
 * counter - a counter in heap memory and a copy on the stack, bumped about
 * every millisecond; a ring in .bss remembers the last values and a heap
 * block holds a fixed pattern.  Logs "count N" every 500 steps.
 *
 * Check: heap copy == stack copy, the counter went past its value at
 * 'ready', the ring and the heap block are intact, and it keeps counting.
 */
#include "scenario.h"

#define RING	   64
#define BLOCK_SIZE (64 << 10) /* below the mmap threshold: lives in [heap] */

static unsigned long ring[RING];
static unsigned long *heap_counter;
static unsigned char *heap_block;
static unsigned long ready_value;

static void step(volatile unsigned long *stack_counter)
{
	unsigned long c = ++*heap_counter;

	++*stack_counter;
	ring[c % RING] = c;
	if (c % 500 == 0)
		scn_log("count %lu", c);
}

static void verify(unsigned long stack_counter)
{
	unsigned long c = *heap_counter;
	unsigned long k;
	size_t i;

	SCN_CHECK(c == stack_counter, "heap counter %lu != stack counter %lu", c, stack_counter);
	SCN_CHECK(c > ready_value, "counter %lu not past its ready value %lu", c, ready_value);
	for (k = 0; k < RING; k++)
		SCN_CHECK(ring[(c - k) % RING] == c - k, "ring[%lu] = %lu, expected %lu",
			  (c - k) % RING, ring[(c - k) % RING], c - k);
	for (i = 0; i < BLOCK_SIZE; i++)
		SCN_CHECK(heap_block[i] == (unsigned char)(i * 7 + 3),
			  "heap block byte %zu is %#x, expected %#x", i, heap_block[i],
			  (unsigned char)(i * 7 + 3));
}

int main(int argc, char **argv)
{
	volatile unsigned long stack_counter = 0;
	unsigned long c0;
	size_t i;

	scn_init(argc, argv, 1);
	heap_counter = malloc(sizeof(*heap_counter));
	heap_block = malloc(BLOCK_SIZE);
	if (!heap_counter || !heap_block)
		scn_fail("malloc failed");
	*heap_counter = 0;
	for (i = 0; i < BLOCK_SIZE; i++)
		heap_block[i] = (unsigned char)(i * 7 + 3);

	/* fill the ring once so that verify() can check all of it */
	while (*heap_counter < 2 * RING)
		step(&stack_counter);
	ready_value = *heap_counter;
	scn_ready();

	for (;;) {
		step(&stack_counter);
		if (scn_check) {
			verify(stack_counter);
			/* still counting, and both copies still move together */
			c0 = *heap_counter;
			for (i = 0; i < 10; i++) {
				step(&stack_counter);
				scn_msleep(1);
			}
			SCN_CHECK(*heap_counter == c0 + 10 && stack_counter == c0 + 10,
				  "counter did not advance by 10 (heap %lu, stack %lu, from %lu)",
				  *heap_counter, stack_counter, c0);
			scn_log("count %lu at check", *heap_counter);
			scn_pass();
		}
		scn_msleep(1);
	}
}
