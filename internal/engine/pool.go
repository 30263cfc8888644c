package engine

import "sync"

// pool runs jobs on at most max goroutines, started on demand, in FIFO
// order. Its queue is unbounded so that Submit never blocks the flow code.
type pool struct {
	max int

	mu      sync.Mutex
	cond    *sync.Cond
	queue   []func()
	workers int
	idle    int
	closed  bool
}

func newPool(max int) *pool {
	p := &pool{max: max}
	p.cond = sync.NewCond(&p.mu)
	return p
}

// push queues job; it reports false when the pool is closed.
func (p *pool) push(job func()) bool {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return false
	}
	p.queue = append(p.queue, job)
	if p.idle > 0 {
		p.cond.Signal()
	} else if p.workers < p.max {
		p.workers++
		go p.work()
	}
	p.mu.Unlock()
	return true
}

func (p *pool) work() {
	p.mu.Lock()
	for {
		for len(p.queue) == 0 && !p.closed {
			p.idle++
			p.cond.Wait()
			p.idle--
		}
		if len(p.queue) == 0 {
			p.workers--
			p.mu.Unlock()
			return
		}
		job := p.queue[0]
		p.queue[0] = nil
		p.queue = p.queue[1:]
		p.mu.Unlock()
		job()
		p.mu.Lock()
	}
}

// close stops accepting jobs; workers exit once the queue is drained.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	p.cond.Broadcast()
	p.mu.Unlock()
}
