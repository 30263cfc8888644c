package blob

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fetcher counts fetches per reference; each blocks until release is
// closed when it is set.
type fetcher struct {
	mu      sync.Mutex
	n       map[string]int
	release chan struct{}
	fail    bool
}

func (f *fetcher) get(ref string) ([]byte, error) {
	f.mu.Lock()
	f.n[ref]++
	f.mu.Unlock()
	if f.release != nil {
		<-f.release
	}
	if f.fail {
		return nil, errors.New("unreachable")
	}
	return []byte(strings.Repeat(ref[:1], 100)), nil
}

func (f *fetcher) count(ref string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n[ref]
}

func TestCacheSharesFetches(t *testing.T) {
	t.Parallel()
	f := &fetcher{n: map[string]int{}, release: make(chan struct{})}
	c := NewCache(f.get, 1000)
	var wg sync.WaitGroup
	var started sync.WaitGroup
	for range 7 {
		wg.Add(1)
		started.Add(1)
		go func() {
			defer wg.Done()
			started.Done()
			if got, err := c.Get("a"); err != nil || len(got) != 100 {
				t.Errorf("Get = %d bytes, %v", len(got), err)
			}
		}()
	}
	started.Wait()
	close(f.release)
	wg.Wait()
	if _, err := c.Get("a"); err != nil {
		t.Fatal(err)
	}
	if n := f.count("a"); n != 1 {
		t.Errorf("7 readers and a later one fetched %d times, want 1", n)
	}
}

func TestCacheBudget(t *testing.T) {
	t.Parallel()
	f := &fetcher{n: map[string]int{}}
	c := NewCache(f.get, 400) // four 100-byte blobs
	for _, ref := range []string{"a", "b", "c", "d", "a", "e", "b", "a"} {
		if _, err := c.Get(ref); err != nil {
			t.Fatal(err)
		}
	}
	// e evicts b (the least recently used), and b again evicts c.
	want := map[string]int{"a": 1, "b": 2, "c": 1, "d": 1, "e": 1}
	for ref, n := range want {
		if got := f.count(ref); got != n {
			t.Errorf("%s fetched %d times, want %d", ref, got, n)
		}
	}
	small := NewCache(f.get, 399) // a quarter is under 100 bytes: nothing kept
	small.Get("z")
	small.Get("z")
	if n := f.count("z"); n != 2 {
		t.Errorf("a blob over a quarter of the budget fetched %d times, want 2 (not kept)", n)
	}
}

func TestCacheForgetsErrors(t *testing.T) {
	t.Parallel()
	f := &fetcher{n: map[string]int{}, fail: true}
	c := NewCache(f.get, 1000)
	if _, err := c.Get("a"); err == nil {
		t.Fatal("no error")
	}
	f.fail = false
	if _, err := c.Get("a"); err != nil {
		t.Errorf("after a failed fetch, Get: %v", err)
	}
}

func TestPuts(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	release := make(chan struct{})
	put := func(data []byte) (string, error) {
		n.Add(1)
		<-release
		return "ref:" + string(data), nil
	}
	p := NewPuts(put, time.Hour)
	var wg, started sync.WaitGroup
	for range 7 {
		wg.Add(1)
		started.Add(1)
		go func() {
			defer wg.Done()
			started.Done()
			if ref, err := p.Put([]byte("x")); err != nil || ref != "ref:x" {
				t.Errorf("Put = %q, %v", ref, err)
			}
		}()
	}
	started.Wait()
	close(release)
	wg.Wait()
	p.Put([]byte("x"))
	if got := n.Load(); got != 1 {
		t.Errorf("8 Puts of one content wrote %d times, want 1", got)
	}
	p.Put([]byte("y"))
	if got := n.Load(); got != 2 {
		t.Errorf("another content: %d writes, want 2", got)
	}
	expired := NewPuts(put, 0)
	expired.Put([]byte("x"))
	expired.Put([]byte("x"))
	if got := n.Load(); got != 4 {
		t.Errorf("with ttl 0 every Put writes: %d writes, want 4", got)
	}
}
