package baton

import (
	"encoding/json"
	"fmt"
	"reflect"
	"time"

	"github.com/batonhq/baton/internal/engine"
)

// Defaults applied by Retries when no delay or backoff option is given.
const (
	DefaultRetryDelay = time.Second
	DefaultBackoff    = 2.0
	DefaultMaxDelay   = time.Minute
	DefaultJitter     = 0.1
)

// TaskOption configures a task; pass options to Task. The functions of
// this file return them, and a Resources value is one.
type TaskOption interface {
	applyTask(*taskConfig)
}

// taskOptionFunc is a TaskOption that is a function.
type taskOptionFunc func(*taskConfig)

func (f taskOptionFunc) applyTask(c *taskConfig) { f(c) }

type taskConfig struct {
	policy                          engine.TaskPolicy
	delaySet, backoffSet, jitterSet bool
	cacheKey                        func(any) (string, error)
	// Placement (resources.go).
	resources               *Resources
	fallback                *engine.TaskDef
	fallbackWait            time.Duration
	fallbackIn, fallbackOut reflect.Type
}

// Retries makes a failed attempt run again up to n more times. Retries wait
// 1s, then twice as long each time (capped at a minute), with ±10% jitter;
// RetryDelay, Backoff and Jitter each change one of those defaults.
func Retries(n int) TaskOption { return taskOptionFunc(func(c *taskConfig) { c.policy.Retries = n }) }

// RetryDelay sets the wait before the first retry.
func RetryDelay(d time.Duration) TaskOption {
	return taskOptionFunc(func(c *taskConfig) { c.policy.RetryDelay, c.delaySet = d, true })
}

// Backoff multiplies the retry delay by factor after each retry, up to max
// (0: no cap). A factor of 1 keeps the delay constant.
func Backoff(factor float64, max time.Duration) TaskOption {
	return taskOptionFunc(func(c *taskConfig) { c.policy.Backoff, c.policy.MaxDelay, c.backoffSet = factor, max, true })
}

// Jitter spreads each retry delay randomly by ±fraction of it (0..1), so that
// many failing tasks do not retry in lockstep.
func Jitter(fraction float64) TaskOption {
	return taskOptionFunc(func(c *taskConfig) { c.policy.Jitter, c.jitterSet = fraction, true })
}

// RetryIf retries only the errors for which cond returns true. Errors marked
// with Permanent are never retried, whatever cond says.
func RetryIf(cond func(error) bool) TaskOption {
	return taskOptionFunc(func(c *taskConfig) { c.policy.RetryIf = cond })
}

// Timeout bounds each attempt. When it expires the attempt's context is
// cancelled, the task run is marked TIMED_OUT (or retried), and the flow moves
// on at once even if the task's code ignores its context: that goroutine is
// left to finish on its own and whatever it returns is discarded.
func Timeout(d time.Duration) TaskOption {
	return taskOptionFunc(func(c *taskConfig) { c.policy.Timeout = d })
}

// Queue makes the task distributed: when its flow runs on a worker (see the
// `worker` command), each task run is queued on the named work queue and
// executed by any worker serving that queue that has the task, so a Map
// spreads over the fleet. In a local run (`run`, Execute) the option is
// ignored and the task runs in-process.
func Queue(name string) TaskOption {
	return taskOptionFunc(func(c *taskConfig) { c.policy.Queue = name })
}

// Tags attaches tags to the task's runs (recorded on every task run, shown
// by `runs show`). A tag can carry a global concurrency limit (`baton limits
// set TAG N`): at most N distributed task runs (tasks with Queue) carrying
// the tag are RUNNING at any instant, across every worker and server; the
// others wait in state AWAITING_SLOT and start oldest first as slots free.
// A slot is held by the task run's lease: when its worker dies, the slot is
// free once the lease expires. Tags must be non-empty printable strings of
// at most 200 bytes; Task panics on an invalid one. Tags adds to the tags of
// earlier Tags options.
func Tags(tags ...string) TaskOption {
	return taskOptionFunc(func(c *taskConfig) { c.policy.Tags = append(c.policy.Tags, tags...) })
}

// Version marks a version of the task's code. It is part of the identity
// of the task's steps and of its cache keys: after a change of version, a
// retried run runs the task's completed steps again (and the cache misses),
// while the steps of every other task are still reused. Bump it when a fix
// changes what the task returns; leave it alone for changes that do not.
func Version(v string) TaskOption {
	return taskOptionFunc(func(c *taskConfig) { c.policy.Version = v })
}

// CachePolicy says how a task's results are reused across runs.
type CachePolicy struct {
	// Expiry is how long a cached result stays valid; 0 means forever.
	Expiry time.Duration
	// Version is part of the cache key: bump it when the task's code changes
	// so old results are no longer reused.
	Version string
}

// Cache makes a task reuse a result recorded by any earlier run when the
// cache key matches: by default the hash of the task's input (see CacheKey).
// A task run answered from the cache is recorded as CACHED with the run and
// task run the result came from.
func Cache(p CachePolicy) TaskOption {
	return taskOptionFunc(func(c *taskConfig) {
		if c.policy.Cache == nil {
			c.policy.Cache = &engine.CachePolicy{}
		}
		c.policy.Cache.Expiry, c.policy.Cache.Version = p.Expiry, p.Version
	})
}

// CacheKey computes the cache key from the task's input instead of hashing
// it, and turns caching on. In must be the task's input type.
func CacheKey[In any](key func(In) string) TaskOption {
	return taskOptionFunc(func(c *taskConfig) {
		if c.policy.Cache == nil {
			c.policy.Cache = &engine.CachePolicy{}
		}
		c.cacheKey = func(v any) (string, error) {
			in, ok := v.(In)
			if !ok {
				return "", fmt.Errorf("CacheKey function takes %T but the task's input is %T", *new(In), v)
			}
			return key(in), nil
		}
	})
}

// FlowOption configures a flow; pass options to Flow.
type FlowOption func(*flowConfig) error

// flowConfig is what a FlowOption sets: the flow's definition.
type flowConfig struct{ def *engine.FlowDef }

// FlowTimeout bounds each attempt of a run of the flow: when it expires the
// flow's context and its tasks' contexts are cancelled and the run FAILS
// with a timeout error.
func FlowTimeout(d time.Duration) FlowOption {
	return func(c *flowConfig) error { c.def.Timeout = d; return nil }
}

// FlowRetries starts up to n new attempts of a failed run automatically,
// after delay each; completed steps are reused from the journal.
func FlowRetries(n int, delay time.Duration) FlowOption {
	return func(c *flowConfig) error { c.def.Retries, c.def.RetryDelay = n, delay; return nil }
}

// MaxConcurrency bounds how many of a run's task runs execute at once in
// this process (default 64).
func MaxConcurrency(n int) FlowOption {
	return func(c *flowConfig) error { c.def.MaxConcurrency = n; return nil }
}

// Description documents the flow in `flows` output.
func Description(s string) FlowOption {
	return func(c *flowConfig) error { c.def.Description = s; return nil }
}

// Defaults sets the flow's default parameters; command-line parameters
// override them field by field. P must be the flow's parameter type.
func Defaults[P any](p P) FlowOption {
	return func(c *flowConfig) error {
		if c.def.ParamsType != nil && c.def.ParamsType != typeOf[P]() {
			return fmt.Errorf("Defaults of type %s for flow %q whose parameters are %s", typeOf[P](), c.def.Name, c.def.ParamsType)
		}
		b, err := json.Marshal(p)
		if err != nil {
			return fmt.Errorf("encode defaults of flow %q: %w", c.def.Name, err)
		}
		c.def.Defaults = b
		return nil
	}
}

// CallOption adjusts one call of a task or subflow.
type CallOption func(*callConfig)

type callConfig struct {
	key   string
	after []*engine.Future
}

// Key gives the call an explicit step key instead of one derived from its
// position in the flow: the key is then the step's identity for replay. A
// retry reuses the step recorded under the key when its task, version and
// input are unchanged, and runs it again otherwise (calls without a key
// are matched by task and input already, whatever their order); calling
// another task under a recorded key fails the run with
// ErrNonDeterministic. For Map, item i gets the key "KEY.i".
func Key(key string) CallOption { return func(c *callConfig) { c.key = key } }

// WaitFor makes the task start only after the given futures succeeded,
// without passing their results. If one fails, the task fails without
// running.
func WaitFor(futures ...Waitable) CallOption {
	return func(c *callConfig) {
		for _, f := range futures {
			c.after = append(c.after, f.engineFuture())
		}
	}
}

func applyCall(opts []CallOption) callConfig {
	var c callConfig
	for _, o := range opts {
		o(&c)
	}
	return c
}
