package sqlite

import (
	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/sqlcore"
)

// The stored forms of values are the core's (sqlcore: times as INTEGER unix
// nanoseconds, JSON and free text as escaped TEXT, NULL for nil); histories
// are bound as their JSON bytes.

// encHistory encodes a task run's transitions for the history column, NULL
// when there are none.
func encHistory(h []store.Transition) (any, error) {
	b, err := sqlcore.MarshalHistory(h)
	if b == nil {
		return nil, err
	}
	return b, nil
}

// The core's names that the claims use.
var (
	encTime      = sqlcore.EncTime
	nowIfZero    = sqlcore.NowIfZero
	roundRun     = sqlcore.RoundRun
	roundTaskRun = sqlcore.RoundTaskRun
	scanTaskRun  = sqlcore.ScanTaskRun
)

const (
	runSelectCols     = sqlcore.RunCols
	taskRunSelectCols = sqlcore.TaskRunCols
)
