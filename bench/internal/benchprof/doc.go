// Package benchprof writes a CPU profile of a process of the distributed
// benchmark (go run ./bench distributed -cpuprofile FILE). Importing it is
// enough: when the environment holds BENCH_CPUPROFILE=PATH, its init starts
// a CPU profile into PATH; on SIGUSR2 it stops the profile and creates
// PATH.done, which the harness waits for before it stops the process.
//
// The bench program imports it. The server is cmd/baton unchanged: the
// harness builds it with a go build -overlay that adds this file, renamed to
// package main, to cmd/baton; so the code must stay a single file that
// declares no exported names and only the identifiers prefixed benchprof.
package benchprof
