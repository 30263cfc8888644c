package main

import (
	"os"
	"syscall"
)

// childAttr makes a child process die with the bench process, should the
// bench be killed before it stops its children.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// groupAttr starts a child in a process group of its own.
func groupAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// signalGroup sends SIGTERM (SIGKILL when kill) to the process group led by p.
func signalGroup(p *os.Process, kill bool) {
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	_ = syscall.Kill(-p.Pid, sig)
}

// terminate asks p to stop gracefully.
func terminate(p *os.Process) { _ = p.Signal(syscall.SIGTERM) }

// stopProfile asks a child to stop its CPU profile (bench/internal/benchprof).
func stopProfile(p *os.Process) { _ = p.Signal(syscall.SIGUSR2) }
