package progcmd

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/batonhq/baton/internal/cli"
	"github.com/batonhq/baton/internal/store"
)

// What a worker has: --cpu, --memory and --gpu, or what the machine has.

// workerResources returns what the worker has: the flags given, and for
// the ones not given, what detectResources finds. A flag that does not
// parse is a usage error naming it.
func workerResources(cpu, memory, gpu string, detect func() store.Resources) (store.Resources, error) {
	var r store.Resources
	d := detect()
	var err error
	if cpu == "" {
		r.CPUMilli = d.CPUMilli
	} else if r.CPUMilli, err = store.ParseCPU(cpu); err != nil {
		return r, cli.Usagef("invalid --cpu %q: %v", cpu, err)
	}
	if memory == "" {
		r.Memory = d.Memory
	} else if r.Memory, err = store.ParseMemory(memory); err != nil {
		return r, cli.Usagef("invalid --memory %q: %v", memory, err)
	}
	if gpu == "" {
		r.GPU = d.GPU
	} else {
		n, err := strconv.ParseInt(strings.TrimSpace(gpu), 10, 64)
		if err != nil || n < 0 {
			return r, cli.Usagef("invalid --gpu %q: want a number of GPUs, 0 or more", gpu)
		}
		r.GPU = n
	}
	return r, nil
}

// detectResources returns what this machine gives the process: the CPUs
// the Go runtime may use (runtime.NumCPU, which follows the CPU affinity
// mask), lowered to the cgroup's CPU quota (cpu.max) when there is one;
// the memory of /proc/meminfo's MemTotal, lowered to the cgroup's
// memory.max; and the NVIDIA GPUs the driver shows (/dev/nvidia0,
// /dev/nvidia1, ...). What cannot be read counts as nothing (no memory
// off Linux, no GPUs).
func detectResources() store.Resources {
	r := store.Resources{CPUMilli: int64(runtime.NumCPU()) * 1000}
	if q, ok := cgroupCPUQuota(readFile("/sys/fs/cgroup/cpu.max")); ok && q < r.CPUMilli {
		r.CPUMilli = q
	}
	r.Memory = memTotal(readFile("/proc/meminfo"))
	if m, ok := cgroupMemoryMax(readFile("/sys/fs/cgroup/memory.max")); ok && (r.Memory == 0 || m < r.Memory) {
		r.Memory = m
	}
	gpus, _ := filepath.Glob("/dev/nvidia[0-9]*")
	r.GPU = int64(len(gpus))
	return r
}

func readFile(name string) []byte {
	b, _ := os.ReadFile(name)
	return b
}

// memTotal reads MemTotal (in kB) of a /proc/meminfo; 0 when absent.
func memTotal(meminfo []byte) int64 {
	sc := bufio.NewScanner(bytes.NewReader(meminfo))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 2 && f[0] == "MemTotal:" {
			n, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil || n < 0 {
				return 0
			}
			return n * 1024
		}
	}
	return 0
}

// cgroupCPUQuota reads a cgroup v2 cpu.max ("QUOTA PERIOD" in µs, or
// "max PERIOD"): the quota in millicores, rounded up, when it is set.
func cgroupCPUQuota(b []byte) (int64, bool) {
	f := strings.Fields(string(b))
	if len(f) != 2 || f[0] == "max" {
		return 0, false
	}
	q, err1 := strconv.ParseInt(f[0], 10, 64)
	p, err2 := strconv.ParseInt(f[1], 10, 64)
	if err1 != nil || err2 != nil || q <= 0 || p <= 0 {
		return 0, false
	}
	return (q*1000 + p - 1) / p, true
}

// cgroupMemoryMax reads a cgroup v2 memory.max (bytes, or "max").
func cgroupMemoryMax(b []byte) (int64, bool) {
	s := strings.TrimSpace(string(b))
	n, err := strconv.ParseInt(s, 10, 64)
	if s == "" || s == "max" || err != nil || n <= 0 {
		return 0, false
	}
	return n, true
}

// describeResources is the worker's line about what it has.
func describeResources(r store.Resources) string {
	return fmt.Sprintf("CPU %s, memory %s, GPU %d", store.FormatCPU(r.CPUMilli), store.FormatMemory(r.Memory), r.GPU)
}
