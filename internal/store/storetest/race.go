//go:build race

package storetest

// raceEnabled reports a -race build.
const raceEnabled = true
