package batontest_test

import (
	"fmt"
	"os"
	"slices"
	"testing"
)

// exampleT stands for the *testing.T of a test in the examples, which
// have none: it runs the cleanups when done is called.
type exampleT struct {
	testing.TB // nil: only the methods below are used
	cleanups   []func()
	dirs       []string
}

func exampleTB() (t testing.TB, done func()) {
	et := &exampleT{}
	return et, func() {
		for _, f := range slices.Backward(et.cleanups) {
			f()
		}
		for _, d := range et.dirs {
			os.RemoveAll(d)
		}
	}
}

func (t *exampleT) Helper()                   {}
func (t *exampleT) Cleanup(f func())          { t.cleanups = append(t.cleanups, f) }
func (t *exampleT) Fatalf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }
func (t *exampleT) TempDir() string {
	d, err := os.MkdirTemp("", "batontest-example")
	if err != nil {
		panic(err)
	}
	t.dirs = append(t.dirs, d)
	return d
}
