package baton

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestRetryOptionDefaults(t *testing.T) {
	t.Parallel()
	noop := func(context.Context, int) (int, error) { return 0, nil }
	tests := []struct {
		name                string
		opts                []TaskOption
		delay, max          time.Duration
		backoff, jitterFrac float64
	}{
		{"defaults", []TaskOption{Retries(3)}, DefaultRetryDelay, DefaultMaxDelay, DefaultBackoff, DefaultJitter},
		{"delay only keeps backoff and jitter", []TaskOption{Retries(3), RetryDelay(time.Millisecond)},
			time.Millisecond, DefaultMaxDelay, DefaultBackoff, DefaultJitter},
		{"constant", []TaskOption{Retries(3), Backoff(1, 0), Jitter(0)}, DefaultRetryDelay, 0, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := Task(t.Name(), noop, tt.opts...).def.Policy
			if p.RetryDelay != tt.delay || p.MaxDelay != tt.max || p.Backoff != tt.backoff || p.Jitter != tt.jitterFrac {
				t.Errorf("policy %+v; want delay %s, max %s, backoff %v, jitter %v", p, tt.delay, tt.max, tt.backoff, tt.jitterFrac)
			}
		})
	}
}

// TestFlowParameterDecodeErrorNamesTheParameter: parameters recorded
// without validation (a run created through the API before any worker
// registered its flow) fail with the message the command line gives.
func TestFlowParameterDecodeErrorNamesTheParameter(t *testing.T) {
	t.Parallel()
	type P struct {
		Count int `json:"count"`
	}
	f := Flow("count", func(ctx Context, p P) (int, error) { return p.Count, nil })
	_, err := f.def.Body(nil, json.RawMessage(`{"count":"abc"}`))
	if err == nil || !strings.Contains(err.Error(), `parameters of flow count: parameter "count": expected integer, got string "abc"`) {
		t.Fatalf("Body: %v", err)
	}
	_, err = f.def.Body(nil, json.RawMessage(`{"count":1,"x":{}}`))
	if err == nil || !strings.Contains(err.Error(), `unknown parameter "x"; known parameters: count`) {
		t.Fatalf("Body: %v", err)
	}
}
