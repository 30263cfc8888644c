//go:build unix

package benchprof

import (
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
)

func init() { benchprofStart() }

func benchprofStart() {
	path := os.Getenv("BENCH_CPUPROFILE")
	if path == "" {
		return
	}
	f, err := os.Create(path)
	if err != nil {
		os.Stderr.WriteString("benchprof: " + err.Error() + "\n")
		return
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		os.Stderr.WriteString("benchprof: " + err.Error() + "\n")
		f.Close()
		return
	}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGUSR2)
	go func() {
		<-ch
		pprof.StopCPUProfile()
		f.Close()
		if err := os.WriteFile(path+".done", nil, 0o644); err != nil {
			os.Stderr.WriteString("benchprof: " + err.Error() + "\n")
		}
	}()
}
