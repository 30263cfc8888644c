//go:build !linux

package main

import (
	"os"
	"syscall"
)

func childAttr() *syscall.SysProcAttr { return nil }

func groupAttr() *syscall.SysProcAttr { return nil }

func signalGroup(p *os.Process, kill bool) {
	if kill {
		_ = p.Kill()
		return
	}
	terminate(p)
}

func terminate(p *os.Process) {
	if p.Signal(os.Interrupt) != nil {
		_ = p.Kill()
	}
}

func stopProfile(p *os.Process) {}
