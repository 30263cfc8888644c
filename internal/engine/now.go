package engine

import "time"

// Now returns the time on the engine's clock (the one every timed decision
// of the engine reads), for steps that record the time.
func (e *Engine) Now() time.Time { return e.now() }
