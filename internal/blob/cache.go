package blob

import (
	"container/list"
	"crypto/sha256"
	"sync"
	"time"
)

// Cache is a read-through cache of blob contents in memory, for a process
// that reads blobs from far away (a worker reads them from its server):
// the tasks of a fan-out that share one dataset fetch it once. Blobs never
// change, so an entry is never stale. Concurrent reads of one reference
// share one fetch. It keeps the most recently used contents up to its
// byte budget; a blob larger than a quarter of the budget is fetched for
// its concurrent readers and not kept. Failed fetches are not kept.
// A Cache is safe for concurrent use.
type Cache struct {
	get   func(ref string) ([]byte, error)
	max   int64
	mu    sync.Mutex
	items map[string]*cacheItem
	lru   list.List // of *cacheItem kept, most recent first
	size  int64
}

type cacheItem struct {
	ref  string
	done chan struct{}
	data []byte
	err  error
	elem *list.Element // nil while fetched, or when not kept
}

// NewCache returns a cache of the contents that get returns, keeping up to
// maxBytes of them.
func NewCache(get func(ref string) ([]byte, error), maxBytes int64) *Cache {
	return &Cache{get: get, max: maxBytes, items: map[string]*cacheItem{}}
}

// Get returns the content of ref, from the cache or fetched. The caller
// must not modify it.
func (c *Cache) Get(ref string) ([]byte, error) {
	c.mu.Lock()
	if it, ok := c.items[ref]; ok {
		if it.elem != nil {
			c.lru.MoveToFront(it.elem)
		}
		c.mu.Unlock()
		<-it.done
		return it.data, it.err
	}
	it := &cacheItem{ref: ref, done: make(chan struct{})}
	c.items[ref] = it
	c.mu.Unlock()

	it.data, it.err = c.get(ref)
	c.mu.Lock()
	if n := int64(len(it.data)); it.err != nil || n > c.max/4 {
		delete(c.items, ref)
	} else {
		it.elem = c.lru.PushFront(it)
		for c.size += n; c.size > c.max; {
			old := c.lru.Remove(c.lru.Back()).(*cacheItem)
			delete(c.items, old.ref)
			c.size -= int64(len(old.data))
		}
	}
	c.mu.Unlock()
	close(it.done)
	return it.data, it.err
}

// Puts spares repeated writes of the same content: concurrent Puts of one
// content share one write, and a content written less than ttl ago is not
// written again. The tasks of a fan-out that share one dataset then write
// it once, also through a server. Skipping a Put skips the refresh of the
// blob's time that keeps it from retention (see the package
// documentation), which is safe while ttl is far below Grace: the record
// holding the reference is committed long before the blob may go. It
// remembers at most 4,096 contents (their hashes, not the contents).
// A Puts is safe for concurrent use.
type Puts struct {
	put func([]byte) (string, error)
	ttl time.Duration
	mu  sync.Mutex
	m   map[[sha256.Size]byte]*putItem
}

type putItem struct {
	done chan struct{}
	ref  string
	err  error
	at   time.Time // when the write ended
}

// maxPuts bounds the contents a Puts remembers.
const maxPuts = 4096

// NewPuts returns a Puts writing through put and remembering writes for
// ttl (in real time: it is measured against files' modification times).
func NewPuts(put func([]byte) (string, error), ttl time.Duration) *Puts {
	return &Puts{put: put, ttl: ttl, m: map[[sha256.Size]byte]*putItem{}}
}

// Put stores data through the underlying put unless this content was stored
// less than ttl ago or is being stored now, and returns its reference.
func (p *Puts) Put(data []byte) (string, error) {
	sum := sha256.Sum256(data)
	p.mu.Lock()
	if it, ok := p.m[sum]; ok {
		select {
		case <-it.done:
			if time.Since(it.at) < p.ttl {
				p.mu.Unlock()
				return it.ref, nil
			}
		default:
			p.mu.Unlock()
			<-it.done
			if it.err == nil {
				return it.ref, nil
			}
			return p.put(data) // the shared write failed: try on our own
		}
	}
	if len(p.m) >= maxPuts {
		for k, it := range p.m {
			select {
			case <-it.done:
				if time.Since(it.at) >= p.ttl || len(p.m) >= maxPuts {
					delete(p.m, k)
				}
			default:
			}
		}
	}
	it := &putItem{done: make(chan struct{})}
	p.m[sum] = it
	p.mu.Unlock()

	it.ref, it.err = p.put(data)
	p.mu.Lock()
	it.at = time.Now()
	if it.err != nil {
		delete(p.m, sum)
	}
	p.mu.Unlock()
	close(it.done)
	return it.ref, it.err
}
