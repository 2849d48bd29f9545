package pipeline

/*
#include <malloc.h>
*/
import "C"

import "sync"

// keepFramesOutOfArenas fixes glibc's mmap threshold at 1 MiB for this process (a composite's job).
//
// glibc serves blocks above its mmap threshold with mmap and gives them back on free, but it
// raises the threshold to the size of every such block freed: once a large frame has been freed,
// frames come from its arenas and stay resident after they are freed. Fixed at 1 MiB, 720p frames
// stay out of the arenas; smaller blocks stay in them. Measured (docs/benchmarks.md, 2026-12-02):
// the 2-publisher composite's anonymous memory went from 84–105 MB to 81–89 MB (five runs against
// three), at the same CPU. Not for the participant egress: there it saved 2–3 MB and cost
// ≈ 0.08 core (medians of four runs each: 0.567 → 0.646), each freed 720p frame mapped and faulted
// in again (the kernel went from 4 % to 11 % of its perf samples, clearing and faulting pages).
// A 128 KiB threshold saved as much on the composite but cost it 0.04–0.05 core. A v2 media source
// (a composite of one 720p camera) measured the same with it and without (0.68 / 0.70 core, 136 MB).
// It is a process-wide setting: made once.
func keepFramesOutOfArenas() {
	arenaOnce.Do(func() { C.mallopt(C.M_MMAP_THRESHOLD, 1<<20) })
}

var arenaOnce sync.Once
