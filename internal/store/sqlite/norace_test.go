//go:build !race

package sqlite

// raceEnabled reports a -race build.
const raceEnabled = false
