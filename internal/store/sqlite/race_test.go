//go:build race

package sqlite

// raceEnabled reports a -race build, under which the transpiled SQLite runs
// many times slower and timings are meaningless.
const raceEnabled = true
