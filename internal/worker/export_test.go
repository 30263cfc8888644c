package worker

import "time"

func init() {
	// The longest wait the server allows: a freed slot that only the end of
	// a long poll would refill stalls a test for a minute, beyond its
	// deadline, instead of passing a little late.
	claimWait = 60 * time.Second
}
