package tests

import "flag"

// relLong selects the long mode of the reliability tests (crash, concurrency,
// faults): many more kills, writers and seconds. The default is the short
// mode CI runs under -race.
var relLong = flag.Bool("reliability.long", false, "run the reliability tests in long mode (≥50 SIGKILLs, longer load)")
