"""Running compiled graphs: plans and their steps (``plan``), native programs, the thread
pool and its spin-waits, work splitting, eager calls, bounds checking."""
