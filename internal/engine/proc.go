package engine

import (
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"

	"github.com/batonhq/baton/internal/store"
)

// Process identifies an OS process across pid reuse: host, pid and the
// process start time (clock ticks since boot on Linux, 0 where unknown).
type Process struct {
	Host  string
	PID   int
	Start int64
}

// Self returns the identity of the current process.
func Self() Process {
	host, _ := os.Hostname()
	pid := os.Getpid()
	return Process{Host: host, PID: pid, Start: procStart(pid)}
}

// Alive reports whether p still runs. The second result is false when this
// process cannot tell (p runs on another host).
func (p Process) Alive() (alive, known bool) {
	self := Self()
	if p.Host != self.Host || p.PID == 0 {
		return false, false
	}
	if p.PID == self.PID && p.Start == self.Start {
		return true, true
	}
	if err := syscall.Kill(p.PID, 0); err != nil && err != syscall.EPERM {
		return false, true
	}
	if p.Start != 0 {
		if st := procStart(p.PID); st != 0 && st != p.Start {
			return false, true // the pid was reused by another process
		}
	}
	return true, true
}

// procStart reads field 22 (starttime) of /proc/PID/stat; 0 if unavailable.
func procStart(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	fields := strings.Fields(s[i+1:])
	// fields[0] is field 3 (state); starttime is field 22.
	if len(fields) < 20 {
		return 0
	}
	v, _ := strconv.ParseInt(fields[19], 10, 64)
	return v
}

// CurrentUser names the user of this process in records, such as who
// edited a run's parameters: "NAME@HOST" with the OS user name (else $USER,
// else "unknown") and the host name.
func CurrentUser() string {
	name, _ := currentUser()
	return name
}

// CurrentActor is the OS user running this process (CurrentUser), for
// histories: verified when the operating system named it (the user of the
// process's uid), not when only $USER did.
func CurrentActor() store.Actor {
	name, verified := currentUser()
	return store.Actor{Name: name, Verified: verified}
}

func currentUser() (string, bool) {
	verified := false
	name := os.Getenv("USER")
	if u, err := user.Current(); err == nil && u.Username != "" {
		name, verified = u.Username, true
	}
	if name == "" {
		name = "unknown"
	}
	if host, err := os.Hostname(); err == nil && host != "" {
		return name + "@" + host, verified
	}
	return name, verified
}
