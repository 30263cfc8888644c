// Command prog is the user program that the process-level tests build: its
// tasks append their executions to the file named by $EXEC_LOG so the tests
// can count how often each step ran across kills and retries.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/batonhq/baton"
)

func logExec(what string) {
	f, err := os.OpenFile(os.Getenv("EXEC_LOG"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		panic(err)
	}
	fmt.Fprintln(f, what)
	f.Sync()
	f.Close()
}

// Params of the steps flow.
type Params struct {
	N       int    `json:"n" baton:"required" doc:"number of steps"`
	SleepMS int    `json:"sleep_ms" doc:"how long each step works"`
	Label   string `json:"label"`
}

var step = baton.Task("step", func(_ context.Context, i int) (int, error) {
	logExec("step " + strconv.Itoa(i))
	time.Sleep(time.Duration(sleepMS()) * time.Millisecond)
	if fail := os.Getenv("FAIL_AT"); fail != "" && fail == strconv.Itoa(i) {
		return 0, baton.Permanent(errors.New("told to fail at step " + fail))
	}
	return i, nil
})

func sleepMS() int {
	n, _ := strconv.Atoi(os.Getenv("SLEEP_MS"))
	return n
}

var steps = baton.Flow("steps", func(ctx baton.Context, p Params) (int, error) {
	sum := 0
	for i := range p.N {
		v, err := step.Run(ctx, i)
		if err != nil {
			return 0, err
		}
		sum += v
	}
	return sum, nil
}, baton.Defaults(Params{N: 3}))

var item = baton.Task("item", func(_ context.Context, i int) (int, error) {
	logExec("item " + strconv.Itoa(i))
	time.Sleep(time.Duration(sleepMS()) * time.Millisecond)
	return i, nil
})

var fan = baton.Flow("fan", func(ctx baton.Context, n int) (int, error) {
	items := make([]int, n)
	for i := range items {
		items[i] = i
	}
	vs, err := baton.WaitAll(ctx, item.Map(ctx, items))
	if err != nil {
		return 0, err
	}
	return len(vs), nil
}, baton.MaxConcurrency(4), baton.Defaults(10))

func main() { baton.Main(steps, fan) }
